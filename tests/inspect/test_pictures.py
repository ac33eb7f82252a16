"""How explain draws a model's input: on the pixels' own [0, 1] scale, so brightness stays visible."""

from __future__ import annotations

import numpy as np

from jaxflow.inspect.pictures import gray_rgb


def test_an_input_in_the_unit_range_keeps_its_brightness():
  digit = np.array([[0.0, 1.0], [0.5, 0.25]])
  night, day = 0.2 * digit, 0.2 * digit + 0.3  # the sample_bias study's light: the same digit, darker or lighter
  assert np.allclose(gray_rgb(night, as_input=True)[..., 0], night)
  assert np.allclose(gray_rgb(day, as_input=True)[..., 0], day)
  # Stretched to their own range (kernels, or the old input tiles) the two photos are the same picture.
  assert np.allclose(gray_rgb(night), gray_rgb(day)) and np.allclose(gray_rgb(night)[..., 0], digit)


def test_inputs_outside_the_unit_range_are_still_stretched():
  standardized = np.array([[-1.5, 0.0], [1.5, 3.0]])  # feature standardization gives negative values
  drawn = gray_rgb(standardized[..., None], as_input=True)
  assert drawn.shape == (2, 2, 3) and drawn.min() == 0.0 and drawn.max() == 1.0
