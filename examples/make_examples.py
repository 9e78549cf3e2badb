"""Write the example photos bundled with scikit-image into this folder (no download).

Run: ``python examples/make_examples.py``. Licences are listed in examples/LICENSES.md.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from skimage import data

EXAMPLES = {
    "astronaut": lambda: data.astronaut(),
    "chelsea": lambda: data.chelsea(),
    "coffee": lambda: data.coffee(),
    "rocket": lambda: data.rocket(),
    "motorcycle": lambda: data.stereo_motorcycle()[0],
    "camera": lambda: data.camera(),
}


def main(folder: Path = Path(__file__).parent) -> None:
    for name, load in EXAMPLES.items():
        path = folder / f"{name}.jpg"
        Image.fromarray(load()).convert("RGB").save(path, quality=90)
        print(path)


if __name__ == "__main__":
    main()
