"""The Gradio UI: layout only; every computation goes through `playground.runtime.service.Playground`."""
