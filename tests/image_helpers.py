"""Tests that need Tesseract (with its Thai model) to read printed text in pictures.

    from image_helpers import needs_tesseract

    @needs_tesseract
    def test_...(): ...

Where Tesseract is installed (./dev installs tesseract-ocr and tesseract-ocr-tha), the test runs. Where
it is missing, a developer's run skips the test and says why; a CI run (environment variable CI set, as
.ci/run sets it) fails it instead, naming the Debian packages: CI never passes by skipping OCR.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import pytest

from images.reader import tesseract_available

MISSING = ("Tesseract with its Thai model is not installed (Debian: apt install tesseract-ocr tesseract-ocr-tha; "
           "./dev does it as root)")


def needs_tesseract(fn: Callable[..., Any]) -> Callable[..., Any]:
    if tesseract_available("tha"):
        return fn
    if os.environ.get("CI"):
        @functools.wraps(fn)
        def fail(*args: Any, **kwargs: Any) -> None:
            pytest.fail(f"{MISSING}: on CI the OCR tests must run, not be skipped")

        return fail
    return pytest.mark.skip(reason=MISSING)(fn)
