"""Annotation work: bounding boxes (IoU, agreement between two annotators, 3D-to-2D projection)."""
