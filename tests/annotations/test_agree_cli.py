"""`jaxflow agree`: two annotators' COCO files in, agreement.json and .md out, checked against IoUs worked out by hand;
bad files refused with one line naming the file and the field, exit 2, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import jaxflow
from jaxflow.annotations.coco import CocoError, read_coco

JAXFLOW = os.path.join(os.path.dirname(sys.executable), "jaxflow")
CATEGORIES = [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}]
IMAGES = [{"id": 1, "file_name": "one.png"}, {"id": 2, "file_name": "two.png"}, {"id": 3, "file_name": "empty.png"}]


def _ann(ann_id: int, image_id: int, category_id: int, bbox: list[float]) -> dict:
  return {"id": ann_id, "image_id": image_id, "category_id": category_id, "bbox": bbox}


# Image 1: car 10 [0, 4]^2 vs car 20 [1, 4]^2: 9 / 16 = 0.5625 (matched); car 11 [10, 12]^2 vs car 21 one pixel
# lower: intersection 2 x 1 = 2, union 4 + 4 - 2 = 6 -> 1/3 (below 0.5); A's person 12 at [20, 22]^2 overlaps
# nothing of its category, and B's person 22 lies exactly on A's car 10 but is another category: both unmatched.
# Image 2, rows of height 1 (IoU = interval overlap): a1 [0, 10], a2 [6, 12]; b1 [2, 10], b2 [0, 7]:
# a1-b1 8/10, a1-b2 7/10, a2-b1 4/10, a2-b2 1/12. Greedy takes a1-b1 (0.8) and leaves a2-b2 (1/12); the
# Hungarian assignment maximizes the sum: a1-b2 + a2-b1 = 1.1 > 0.8 + 1/12. At 0.5 only a1-b2 is matched.
A = {
  "images": IMAGES,
  "annotations": [
    _ann(10, 1, 1, [0, 0, 4, 4]),
    _ann(11, 1, 1, [10, 10, 2, 2]),
    _ann(12, 1, 2, [20, 20, 2, 2]),
    _ann(13, 2, 1, [0, 0, 10, 1]),
    _ann(14, 2, 1, [6, 0, 6, 1]),
  ],
  "categories": CATEGORIES,
}
B = {
  "images": IMAGES,
  "annotations": [
    _ann(20, 1, 1, [1, 1, 3, 3]),
    _ann(21, 1, 1, [10, 11, 2, 2]),
    _ann(22, 1, 2, [0, 0, 4, 4]),
    _ann(23, 2, 1, [2, 0, 8, 1]),
    _ann(24, 2, 1, [0, 0, 7, 1]),
  ],
  "categories": CATEGORIES,
}


def _write(path, data) -> str:
  path.write_text(data if isinstance(data, str) else json.dumps(data))
  return str(path)


def _agree(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([JAXFLOW, "agree", *args], capture_output=True, text=True, timeout=180)


@pytest.fixture
def files(tmp_path):
  return _write(tmp_path / "a.json", A), _write(tmp_path / "b.json", B)


def test_console_script_writes_the_hand_computed_agreement(tmp_path, files):
  out = tmp_path / "report"
  proc = _agree(f"--a={files[0]}", f"--b={files[1]}", f"--out={out}")
  assert proc.returncode == 0, proc.stderr
  assert json.loads(proc.stdout)["n_matched"] == 2
  result = json.loads((out / "agreement.json").read_text())
  o = result["overall"]
  assert (o["n_a"], o["n_b"], o["n_matched"], o["n_below_threshold"]) == (5, 5, 2, 2)
  assert (o["unmatched_a"], o["unmatched_b"]) == (3, 3)
  assert o["mean_iou"] == pytest.approx((9 / 16 + 0.7) / 2, abs=1e-5)
  assert o["mean_iou_assigned"] == pytest.approx((9 / 16 + 1 / 3 + 0.7 + 0.4) / 4, abs=1e-5)
  assert o["matched_share_a"] == pytest.approx(2 / 5) and o["agreement"] == pytest.approx(4 / 10)
  car, person = result["per_category"]["car"], result["per_category"]["person"]
  assert (car["n_a"], car["n_matched"], car["n_below_threshold"]) == (4, 2, 2)
  assert (person["n_a"], person["n_b"], person["n_matched"], person["n_below_threshold"]) == (1, 1, 0, 0)
  one, two, empty = result["per_image"]
  assert [(p["a_annotation_id"], p["b_annotation_id"], p["matched"]) for p in one["pairs"]] == [
    (10, 20, True),
    (11, 21, False),
  ]
  assert [(p["a_annotation_id"], p["b_annotation_id"]) for p in two["pairs"]] == [(13, 24), (14, 23)]  # not greedy
  assert [p["iou"] for p in two["pairs"]] == pytest.approx([0.7, 0.4], abs=1e-5)
  assert empty["agreement"] == 1.0 and empty["pairs"] == []  # neither drew a box: nothing to disagree on
  md = (out / "agreement.md").read_text()
  assert "## Per category" in md and "| car | 4 | 4 | 2 |" in md and "two.png" in md


def test_threshold_flag_and_public_function_agree(tmp_path, files):
  """At --iou=0.35 the Hungarian pair a2-b1 (0.4) is matched too: three matches, where greedy would give two."""
  proc = _agree(f"--a={files[0]}", f"--b={files[1]}", f"--out={tmp_path / 'r'}", "--iou=0.35")
  assert proc.returncode == 0, proc.stderr
  from_cli = json.loads((tmp_path / "r" / "agreement.json").read_text())
  result = jaxflow.agreement(*files, iou_threshold=0.35)
  assert from_cli["overall"] == pytest.approx(result["overall"])
  assert result["overall"]["n_matched"] == 3
  assert result["overall"]["mean_iou"] == pytest.approx((9 / 16 + 0.7 + 0.4) / 3, abs=1e-5)


def _bad(tmp_path, mutate) -> str:
  data = json.loads(json.dumps(A))
  mutate(data)
  return _write(tmp_path / "bad.json", data)


def _negative_width(d):
  d["annotations"][1]["bbox"] = [10, 10, -2, 2]


def _unknown_image(d):
  d["annotations"][2]["image_id"] = 7


@pytest.mark.parametrize(
  "make, says",
  [
    (lambda p: str(p / "missing.json"), "missing.json: no such file"),
    (lambda p: _write(p / "bad.json", "{not json"), "bad.json: not JSON"),
    (lambda p: _bad(p, _negative_width), "bad.json: annotations[1].bbox has a negative width (-2)"),
  ],
  ids=["missing", "not-json", "negative-width"],
)
def test_console_script_refuses_bad_files_with_one_line(tmp_path, files, make, says):
  bad, out = make(tmp_path), tmp_path / "report"
  proc = _agree(f"--a={files[0]}", f"--b={bad}", f"--out={out}")
  assert proc.returncode == 2
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("jaxflow agree: error: ") and says in lines[0], proc.stderr
  assert "Traceback" not in proc.stderr and proc.stdout == ""
  assert not out.exists()


@pytest.mark.parametrize(
  "mutate, says",
  [
    (_unknown_image, "annotations[2].image_id 7 is not the id of an entry of 'images'"),
    (lambda d: d.pop("images"), "not a COCO file: field 'images' is missing"),
    (lambda d: d["annotations"][0].update(category_id=9), "annotations[0].category_id 9 is not the id"),
    (lambda d: d["annotations"][0].update(bbox=[0, 0, 4]), "annotations[0].bbox is [0, 0, 4], expected"),
    (lambda d: d["images"][0].pop("id"), "images[0].id is missing"),
    # float32 overflow: identical files once agreed at 0.0, a 400-digit integer raised OverflowError
    (lambda d: d["annotations"][0].update(bbox=[0, 0, 1e39, 10]), "annotations[0].bbox is [0, 0, 1e+39, 10], which"),
    (lambda d: d["annotations"][0].update(bbox=[3e38, 0, 3e38, 10]), "not a finite float32 number"),
    (lambda d: d["annotations"][0].update(bbox=[10**400, 0, 1, 1]), "not a finite float32 number"),
  ],
  ids=[
    "unknown-image",
    "no-images",
    "unknown-category",
    "short-bbox",
    "image-without-id",
    "float32-overflow",
    "corner-overflow",
    "huge-integer",
  ],
)
def test_reader_names_the_file_and_the_field(tmp_path, mutate, says):
  path = _bad(tmp_path, mutate)
  with pytest.raises(CocoError, match="^" + str(path).replace(".", r"\.") + ": ") as e:
    read_coco(path)
  assert says in str(e.value) and "\n" not in str(e.value)


def test_reader_refuses_a_folder_and_too_deep_json_in_one_line(tmp_path):
  with pytest.raises(CocoError, match="is a folder, expected a COCO JSON file"):
    read_coco(str(tmp_path))
  deep = tmp_path / "deep.json"
  deep.write_text("[" * 200_000 + "]" * 200_000)
  with pytest.raises(CocoError, match="nested too deeply"):
    read_coco(str(deep))


def test_reader_converts_coco_boxes_and_names_categories(tmp_path, files):
  boxes = read_coco(files[0])
  assert list(boxes.images) == [1, 2, 3]
  assert boxes.boxes[1].tolist()[0] == [0, 0, 4, 4] and boxes.boxes[1].tolist()[1] == [10, 10, 12, 12]
  assert boxes.categories[1] == ["car", "car", "person"] and boxes.boxes[3].shape == (0, 4)
  no_categories = json.loads(json.dumps(A))
  del no_categories["categories"]
  assert read_coco(_write(tmp_path / "plain.json", no_categories)).category_names == ["1", "2"]
