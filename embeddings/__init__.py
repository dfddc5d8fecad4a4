"""Face embeddings: extraction (dlib by default, ONNX pluggable), the FAISS 1:N index, duplicate-face
linking and threshold calibration. Imports nothing else of ringwatch; import the submodules directly."""
