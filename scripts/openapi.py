"""Write docs/openapi.json: the OpenAPI document with the default settings.

.venv/bin/python -m scripts.openapi
"""

from app import config
from app.api import openapi
from tests.harness import ROOT

PATH = ROOT / "docs" / "openapi.json"


def main():
    PATH.write_text(openapi.render(config.load({})))
    print(f"wrote {PATH.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
