"""Make specs/data/digit_images/ (for specs/images_folder.toml): 40 of scikit-learn's 8x8 digits per class as gray
PNGs in one subfolder per digit (run from the repository root).

    python specs/data/make_digit_images.py
"""

from pathlib import Path

from framework.data.images import write_digit_folder

if __name__ == "__main__":
    print(write_digit_folder(Path(__file__).parent / "digit_images", per_class=40), "images written")
