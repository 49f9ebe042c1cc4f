"""mepgate: read Echelon/NES (OSGP) smart meters locally through their MEP port."""

__version__ = "0.1.0"
