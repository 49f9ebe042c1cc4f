"""The gateway's service layer: polling meters, storing readings, feeding the outputs."""
