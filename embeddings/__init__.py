"""Face embeddings: extraction (dlib by default, ONNX pluggable), the FAISS 1:N index, duplicate-face
linking and its pair shape (``pairs``), threshold calibration. Imports nothing else of ringwatch; import the
submodules directly."""
