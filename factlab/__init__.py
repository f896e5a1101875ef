__version__ = "0.1.0"


def __getattr__(name):
    "Submodules on first use (PEP 562): `import factlab; factlab.probes` without importing every module up front."
    import importlib
    try: return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}": raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
