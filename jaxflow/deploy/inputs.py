"""What `jaxflow predict` reads: image files, folders of images, CSV rows and NPZ arrays -> one checked array.

Why everything is read and checked before the model runs: a prediction file that stops at the bad input
halfway through looks finished, so any file that cannot become the model's input (unreadable, the wrong
shape, channel count or dtype) ends the command in one line naming the file and what the model takes, and
nothing is written. The card says what the model takes (`card["input"]`: the shape without the batch, the
dtype, the value range); inputs are given as the dataset stored them, not as training fed them: the
program itself scales pixels and does the training's resizing.

Images: a file's channels are what it holds, not how it is stored. Alpha that is opaque everywhere is
dropped, a palette is expanded, an RGB file whose three channels are equal everywhere is gray, and a gray
image feeds a 3-channel model as (v, v, v): none of these changes a pixel's meaning. A colour image for a
1-channel model is refused (the model never saw the luma of a colour picture; convert it knowingly), and so
is transparency (compositing onto a background would be our guess). An image of another size is resized to
the card's height and width with Pillow's bilinear filter (aspect ratio not kept), the way the stored
dataset's images were made to one size.
"""

from __future__ import annotations

import csv
import math
import os

import numpy as np
from PIL import Image, ImageOps

from jaxflow.deploy.artifact import ArtifactError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
ARRAY_SUFFIXES = (".npz", ".npy")
CHANNEL_MODES = {1: "L", 3: "RGB"}
# Modes whose pixels are 8 bits per channel: everything else (16-bit, float, CMYK) needs a conversion
# whose meaning we would have to guess.
EIGHT_BIT_MODES = ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa")


def read_inputs(paths: list[str], card: dict) -> tuple[np.ndarray, list[str]]:
  """Every input in `paths` (files, folders, CSV, NPZ; in order) as one array [n, *input shape] of the
  card's dtype, and an id per row (the file, "file.csv:row N", "file.npz[i]"), or ArtifactError."""
  spec = card["input"]
  if spec.get("fields"):
    raise ArtifactError(
      f"the model takes a dict of arrays {sorted(spec['fields'])}; predict reads one array per input: "
      "call jaxflow.load_model(DIR)({...}) from Python"
    )
  if not paths:
    raise ArtifactError("no inputs given: image files, folders of images, .csv or .npz files")
  arrays, ids = [], []
  for path in paths:
    array, names = _read_path(path, spec)
    arrays.append(array)
    ids += names
  return np.concatenate(arrays), ids


def expected(spec: dict) -> str:
  """What the model takes, as errors say it: "[n, 8, 8, 1] uint8 (values 0..255)"."""
  value_range = spec.get("range")
  values = f" (values {value_range[0]}..{value_range[1]})" if value_range else ""
  return f"[n, {', '.join(map(str, spec['shape']))}] {spec['dtype']}{values}"


def _read_path(path: str, spec: dict) -> tuple[np.ndarray, list[str]]:
  if os.path.isdir(path):
    return _read_folder(path, spec)
  suffix = os.path.splitext(path)[1].lower()
  if not os.path.exists(path):
    raise ArtifactError(f"{path}: no such file or folder")
  if suffix in IMAGE_SUFFIXES:
    return read_image(path, spec)[None], [path]
  if suffix == ".csv":
    return _read_csv(path, spec)
  if suffix in ARRAY_SUFFIXES:
    return _read_arrays(path, spec)
  raise ArtifactError(
    f"{path}: unknown input type {suffix or '(no suffix)'!r}; predict reads images ({', '.join(IMAGE_SUFFIXES)}), "
    "folders of images, .csv rows and .npz or .npy arrays"
  )


def _read_folder(folder: str, spec: dict) -> tuple[np.ndarray, list[str]]:
  """Every image file directly inside `folder` (not its subfolders), sorted by name; hidden files (macOS's
  `._x.png` resource forks among them) are not images."""
  try:
    names = sorted(os.listdir(folder))
  except OSError as e:
    raise ArtifactError(f"{folder}: {e.strerror}") from None
  paths = [
    os.path.join(folder, name)
    for name in names
    if not name.startswith(".")
    and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES
    and os.path.isfile(os.path.join(folder, name))
  ]
  if not paths:
    raise ArtifactError(f"{folder}: a folder with no image files ({', '.join(IMAGE_SUFFIXES)}) in it")
  return np.stack([read_image(p, spec) for p in paths]), paths


def _image_layout(path: str, spec: dict) -> tuple[int, int, int]:
  """(height, width, channels) of the images the model takes, or ArtifactError if it takes no images."""
  shape = tuple(spec["shape"])
  if spec["dtype"] == "uint8" and len(shape) == 3 and shape[-1] in CHANNEL_MODES:
    return shape
  if spec["dtype"] == "uint8" and len(shape) == 2:  # [height, width]: gray without a channel axis
    return (*shape, 1)
  raise ArtifactError(
    f"{path}: an image, but the model takes {expected(spec)}, not 8-bit pixels: give its inputs as .csv rows or .npz"
  )


def read_image(path: str, spec: dict) -> np.ndarray:
  """The image file at `path` as the model's input [*input shape] uint8, or ArtifactError naming it."""
  height, width, channels = _image_layout(path, spec)
  image = _decode(path)
  pixels = _channels(path, image, channels)
  if pixels.size != (width, height):
    pixels = pixels.resize((width, height), Image.Resampling.BILINEAR)
  return np.asarray(pixels, np.uint8).reshape(spec["shape"])


def _decode(path: str) -> Image.Image:
  """The picture in the file, upright as a viewer shows it (a phone's JPEG carries its rotation in EXIF),
  decoded into memory (Pillow's closed file images are unusable), or ArtifactError."""
  try:
    with Image.open(path) as image:
      # An animation (GIF, APNG, WebP) is many pictures; a camera's MPO JPEG is one picture and its previews.
      frames = getattr(image, "n_frames", 1) if image.format != "MPO" else 1
      image.load()
      ImageOps.exif_transpose(image, in_place=True)
      decoded = image.copy()
  except OSError as e:
    reason = e.strerror or " ".join(str(e).split())[:120]
    raise ArtifactError(f"{path}: not a readable image ({reason})") from None
  except Exception as e:  # a damaged file reaches a decoder's own exception types (SyntaxError, struct.error, ...)
    raise ArtifactError(
      f"{path}: not a readable image ({type(e).__name__}: {' '.join(str(e).split())[:120]})"
    ) from None
  if frames > 1:
    raise ArtifactError(f"{path}: an animation of {frames} frames; predict takes one picture per file")
  return decoded


def _channels(path: str, image: Image.Image, channels: int) -> Image.Image:
  """`image` in mode L (channels=1) or RGB (3), where that changes no pixel's meaning (module docstring)."""
  if image.mode not in EIGHT_BIT_MODES:
    raise ArtifactError(
      f"{path}: pixel mode {image.mode}; the model takes 8-bit {CHANNEL_MODES[channels]} images (convert it first)"
    )
  if image.mode in ("P", "PA"):
    image = image.convert("RGBA")
  if image.mode in ("LA", "La", "RGBA", "RGBa"):
    low, _ = image.getchannel("A").getextrema()
    if low < 255:
      raise ArtifactError(
        f"{path}: has transparent pixels ({image.mode}); the model takes {channels}-channel images without "
        "alpha: flatten it onto a background first"
      )
    image = image.convert("L" if image.mode.startswith("L") else "RGB")
  if image.mode == "1":
    image = image.convert("L")
  if image.mode == "RGB" and channels == 1:
    red, green, blue = (np.asarray(image.getchannel(c)) for c in "RGB")
    if not (np.array_equal(red, green) and np.array_equal(red, blue)):
      raise ArtifactError(f"{path}: has 3 channels (a colour image); the model takes 1 (grayscale): convert it first")
    return image.getchannel("R")
  return image.convert(CHANNEL_MODES[channels])


def _read_csv(path: str, spec: dict) -> tuple[np.ndarray, list[str]]:
  """One example per row: the input's values flattened (C order), under an optional header row (a first row
  that is not all numbers). Ids number rows as an editor numbers lines: "x.csv:row 2" is the first under a
  header; blank lines are skipped."""
  size = math.prod(spec["shape"])
  rows, ids, first, columns = [], [], True, None
  try:
    with open(path, newline="") as f:
      reader = csv.reader(f)
      for row in reader:
        if not any(cell.strip() for cell in row):
          continue
        numbers = [_number(cell) for cell in row]
        header, first = first and None in numbers, False
        if header:
          columns = _named_columns(path, [cell.strip() for cell in row], spec)
          continue
        if columns is not None:  # the training CSV's own columns, picked by name (the label and others dropped)
          row = [row[i] if i < len(row) else "" for i in columns]
          numbers = [_number(cell) for cell in row]
        where = f"{path}:row {reader.line_num}"
        if None in numbers:
          bad = row[numbers.index(None)].strip()
          raise ArtifactError(f"{where}: {bad!r} is not a number; each row is {size} numbers ({expected(spec)})")
        if len(numbers) != size:
          raise ArtifactError(
            f"{where}: {len(numbers)} values; each row is the model's input flattened, {size} values ({expected(spec)})"
          )
        rows.append(numbers)
        ids.append(where)
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    reason = getattr(e, "strerror", None) or f"{type(e).__name__}: {' '.join(str(e).split())[:120]}"
    raise ArtifactError(f"{path}: not a readable CSV file ({reason})") from None
  if not rows:
    raise ArtifactError(f"{path}: no rows of values; each row is {size} numbers ({expected(spec)})")
  values = np.asarray(rows, np.float64).reshape(len(rows), *spec["shape"])
  return checked_values(values, spec, ids), ids


def _named_columns(path: str, header: list[str], spec: dict) -> list[int] | None:
  """Where the model's feature columns (the card's `feature_names`, from the training CSV) sit in this header;
  None when the card names none (the columns are then the input flattened, in order)."""
  names = spec.get("feature_names")
  if not names:
    return None
  missing = [n for n in names if n not in header]
  if missing:
    raise ArtifactError(
      f"{path}: the header lacks the feature column(s) {', '.join(map(repr, missing[:3]))}; the model reads "
      f"{', '.join(names)}"
    )
  return [header.index(n) for n in names]


def _number(cell: str) -> float | None:
  try:
    return float(cell)
  except ValueError:
    return None


def _read_arrays(path: str, spec: dict) -> tuple[np.ndarray, list[str]]:
  """The array named like the model's input (else the only one) of an .npz, or an .npy's array: [n, *shape]
  or one example [*shape]."""
  try:
    loaded = np.load(path, allow_pickle=False)
    if isinstance(loaded, np.ndarray):
      name, array = None, loaded
    else:
      with loaded:
        name = spec["name"] if spec["name"] in loaded.files else None
        if name is None and len(loaded.files) != 1:
          raise ArtifactError(
            f"{path}: holds arrays {loaded.files}; name the input {spec['name']!r} (the model's input) or keep one"
          )
        name = name or loaded.files[0]
        array = loaded[name]
  except ArtifactError:
    raise
  except Exception as e:  # numpy's reader raises OSError, ValueError, zipfile.BadZipFile, EOFError, ...
    reason = f"{type(e).__name__}: {' '.join(str(e).split())[:120]}"
    raise ArtifactError(f"{path}: not a readable {os.path.splitext(path)[1]} file ({reason})") from None
  source = f"{path}[{name!r}]" if name else path
  shape = tuple(spec["shape"])
  if array.shape == shape:
    array = array[None]
  if array.ndim != len(shape) + 1 or tuple(array.shape[1:]) != shape:
    raise ArtifactError(f"{source}: shape {list(array.shape)}; the model takes {expected(spec)} or one {list(shape)}")
  if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating) or array.dtype == bool):
    raise ArtifactError(f"{source}: values of dtype {array.dtype}; the model takes {expected(spec)}")
  if len(array) == 0:
    raise ArtifactError(f"{source}: holds no examples; the model takes {expected(spec)}")
  ids = [f"{path}[{i}]" for i in range(len(array))]
  return checked_values(array, spec, [f"{source}[{i}]" for i in range(len(array))]), ids


def checked_values(values: np.ndarray, spec: dict, ids: list[str]) -> np.ndarray:
  """`values` [n, *shape] (numbers) as the card's dtype when every value is one (integers: whole numbers in
  the card's range, no rounding or wrapping), else ArtifactError naming the first example (`ids[i]`) that
  is not."""
  dtype = np.dtype(spec["dtype"])
  if not np.issubdtype(dtype, np.integer) or values.dtype == np.bool_:
    return values.astype(dtype)
  info = np.iinfo(dtype)
  low, high = spec.get("range") or (info.min, info.max)
  low, high = max(low, info.min), min(high, info.max)
  flat = values.reshape(len(values), -1)
  with np.errstate(invalid="ignore"):
    whole = np.isfinite(flat) & (np.floor(flat) == flat) if np.issubdtype(flat.dtype, np.floating) else None
    bad = ~((flat >= low) & (flat <= high) & (True if whole is None else whole))
  if bad.any():
    example, position = np.argwhere(bad)[0]
    where = [int(i) for i in np.unravel_index(position, values.shape[1:])]
    what = "not a whole number" if whole is not None and not whole[example, position] else f"outside {low}..{high}"
    raise ArtifactError(
      f"{ids[example]}: value {flat[example, position]} at {where} is {what}; the model takes {expected(spec)}"
    )
  return values.astype(dtype)
