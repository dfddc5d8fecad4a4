"""The built-in dlib extractor against the stored LFW vectors, and the ONNX plug-in with a model built here."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from embeddings.extract import (
    DlibExtractor,
    Extractor,
    ImageTooLarge,
    NoFaceFound,
    OnnxExtractor,
    UnreadableImage,
    load_rgb,
)

SHARED = Path(
    os.environ.get("RINGWATCH_SHARED_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data")
)
LFW = SHARED / "lfw_dlib128"
needs_lfw = pytest.mark.skipif(
    not (LFW / "images").is_dir(),
    reason=f"LFW sample images not found under {LFW} (set RINGWATCH_SHARED_DATA)",
)
pytest.importorskip("dlib", reason="the dlib extractor needs the 'faces' extra")


@pytest.fixture(scope="module")
def dlib_extractor() -> DlibExtractor:
    return DlibExtractor()


def grey_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (250, 250), (128, 128, 128)).save(buf, format="PNG")
    return buf.getvalue()


def check_against_stored(extractor: DlibExtractor, images: list[Path]) -> None:
    stored = np.load(LFW / "embeddings.npz")
    by_path = dict(zip(stored["image"], stored["embeddings"], strict=True))
    worst = 0.0
    for path in images:
        got = extractor.extract(path)
        assert got.shape == (128,) and got.dtype == np.float32
        worst = max(worst, float(np.abs(got - by_path[f"{path.parent.name}/{path.name}"]).max()))
    assert worst <= 1e-3


@needs_lfw
def test_dlib_reproduces_stored_lfw_vectors(dlib_extractor: DlibExtractor):
    """One sample image of each of the 20 people (all 60 in the slow variant)."""
    people = sorted(p for p in (LFW / "images").iterdir() if p.is_dir())
    assert len(people) == 20
    assert isinstance(dlib_extractor, Extractor) and dlib_extractor.dim == 128
    check_against_stored(dlib_extractor, [sorted(p.glob("*.jpg"))[0] for p in people])


@needs_lfw
@pytest.mark.slow
def test_dlib_reproduces_all_stored_lfw_sample_vectors(dlib_extractor: DlibExtractor):
    images = sorted((LFW / "images").glob("*/*.jpg"))
    assert len(images) == 60
    check_against_stored(dlib_extractor, images)


@needs_lfw
def test_inputs_as_bytes_and_arrays_agree(dlib_extractor: DlibExtractor):
    path = next((LFW / "images").glob("*/*.jpg"))
    a = dlib_extractor.extract(path)
    np.testing.assert_array_equal(a, dlib_extractor.extract(path.read_bytes()))
    np.testing.assert_array_equal(a, dlib_extractor.extract(load_rgb(path)))


def test_no_face_in_a_flat_grey_image(dlib_extractor: DlibExtractor, tmp_path: Path):
    path = tmp_path / "grey.png"
    path.write_bytes(grey_png())
    with pytest.raises(NoFaceFound, match="no face"):
        dlib_extractor.extract(path)


def test_unreadable_images(dlib_extractor: DlibExtractor, tmp_path: Path):
    with pytest.raises(UnreadableImage, match="cannot read"):
        dlib_extractor.extract(tmp_path / "missing.jpg")
    (tmp_path / "junk.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(UnreadableImage):
        dlib_extractor.extract(tmp_path / "junk.jpg")
    with pytest.raises(UnreadableImage):
        dlib_extractor.extract(grey_png()[:40])  # truncated bytes
    with pytest.raises(UnreadableImage, match="RGB uint8"):
        dlib_extractor.extract(np.zeros((10, 10), dtype=np.float32))


def png_header(width: int, height: int) -> bytes:
    """A PNG declaring ``width`` x ``height`` with the start of one row of pixels and no end: decoding it
    fails as truncated, so a refusal that names the size shows the limit fired on the header alone."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    start = zlib.compressobj().compress(bytes(64))  # no flush: the stream stops mid-row
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", start)


def test_pixel_limit_is_checked_before_decoding(dlib_extractor: DlibExtractor, tmp_path: Path):
    """A decompression bomb (a small file declaring a huge image) is refused from its header, by the caller's
    limit or by Pillow's own guard, as ImageTooLarge (an UnreadableImage, so callers that handle those
    handle it) rather than Pillow's DecompressionBombError."""
    with pytest.raises(ImageTooLarge, match="100 x 100"):
        load_rgb(png_header(100, 100), max_pixels=9_999)
    with pytest.raises(ImageTooLarge):  # over twice Pillow's MAX_IMAGE_PIXELS: Pillow refuses in open()
        load_rgb(png_header(20_000, 20_000))
    path = tmp_path / "grey.png"
    path.write_bytes(grey_png())  # 250 x 250
    with pytest.raises(ImageTooLarge):
        load_rgb(path, max_pixels=250 * 250 - 1)
    assert load_rgb(path, max_pixels=250 * 250).shape == (250, 250, 3)
    with pytest.raises(ImageTooLarge):
        load_rgb(np.zeros((250, 250, 3), dtype=np.uint8), max_pixels=100)
    with pytest.raises(UnreadableImage, match="cannot read"):  # within the limit: decoded, and truncated
        load_rgb(png_header(100, 100), max_pixels=10_000)
    with pytest.raises(ImageTooLarge):
        DlibExtractor(aligner=dlib_extractor.aligner, max_pixels=1000).extract(path)


def tiny_arcface(path: Path, size: int = 32, dim: int = 8, seed: int = 0) -> np.ndarray:
    """An ONNX model with ArcFace's interface: NCHW float input, one embedding out (mean colour x W)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(seed).standard_normal((3, dim)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["data"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "W"], ["embedding"]),
        ],
        "tiny_arcface",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, dim])],
        initializer=[numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return w


@needs_lfw
def test_onnx_extractor_runs_a_model_built_here(tmp_path: Path):
    pytest.importorskip("onnxruntime")
    w = tiny_arcface(tmp_path / "tiny.onnx")
    extractor = OnnxExtractor(tmp_path / "tiny.onnx")
    assert isinstance(extractor, Extractor) and extractor.dim == 8 and extractor.size == 32
    image = next((LFW / "images").glob("*/*.jpg"))
    got = extractor.extract(image)
    rgb = load_rgb(image)
    chip = extractor.aligner.chip(rgb, extractor.aligner.detect(rgb), 32, extractor.padding)
    want = ((chip.astype(np.float32) - 127.5) / 128.0).mean(axis=(0, 1)) @ w
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # a different face gives a different embedding, so the crop really comes from the image
    other = sorted((LFW / "images").glob("*/*.jpg"))[-1]
    assert np.abs(extractor.extract(other) - got).max() > 1e-3
    with pytest.raises(NoFaceFound):
        extractor.extract(grey_png())


def test_onnx_extractor_rejects_bad_models(tmp_path: Path):
    pytest.importorskip("onnxruntime")
    with pytest.raises(FileNotFoundError):
        OnnxExtractor(tmp_path / "absent.onnx")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "flat_input",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 128])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 128])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "flat.onnx")
    with pytest.raises(ValueError, match="NCHW"):
        OnnxExtractor(tmp_path / "flat.onnx")
