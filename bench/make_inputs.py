"""Makes the benchmark's two photos from a shared golden photo: 500x500 and 1920x1080."""
import sys

from PIL import Image

src, out_dir = sys.argv[1], sys.argv[2]
photo = Image.open(src).convert("RGB")
w, h = photo.size
side = min(w, h)
square = photo.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
square.resize((500, 500), Image.BICUBIC).save(f"{out_dir}/photo_500x500.jpg", quality=92)
photo.resize((1920, 1080), Image.BICUBIC).save(f"{out_dir}/photo_1920x1080.jpg", quality=92)
