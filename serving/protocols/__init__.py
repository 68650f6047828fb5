"""Wire protocols (TF Serving REST v1, Open Inference v2) over one internal request type."""
