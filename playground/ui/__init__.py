"""The Gradio UI: layout only; every computation goes through `playground.service.Playground`."""
