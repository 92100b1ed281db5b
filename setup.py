"""The build step pyproject.toml cannot say: the gRPC stubs are generated from protos/ into
the package while it is built, so an installed `shop` (a wheel, `pip install .`) imports
them without the Makefile. In a clone, `make stubs` generates the same files in place."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithStubs(build_py):
    def run(self) -> None:
        from grpc_tools import protoc

        for proto in sorted(Path("protos").rglob("*.proto")):
            args = ["protoc", "-I.", "--python_out=.", "--pyi_out=.", "--grpc_python_out=."]
            if protoc.main([*args, str(proto)]) != 0:
                raise RuntimeError(f"protoc failed on {proto}")
        super().run()


setup(cmdclass={"build_py": BuildWithStubs})
