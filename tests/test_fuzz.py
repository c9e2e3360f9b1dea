"""schemathesis against the app's own OpenAPI schema: no server errors, responses conform."""

from collections import Counter
from pathlib import Path

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from careerbot.api import create_app
from careerbot.config import Settings
from careerbot.index import build_index
from tests.conftest import CORPUS, FakeEmbedder

EXAMPLES = 200


def test_every_operation_conforms_to_the_schema_and_never_errs(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    config = Settings(corpus_dir=CORPUS, index_dir=tmp_path / "index", rate_limit_per_minute=0)
    build_index(config, embedder)
    app = create_app(config, embedder)
    with TestClient(app):  # runs the lifespan: the index is loaded
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {op.path for op in operations} >= {"/ask", "/health", "/speakers", "/topics"}
        calls: Counter[str] = Counter()
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=EXAMPLES,
                derandomize=True,  # a fixed seed: the same examples every run
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case) -> None:
                calls[case.operation.path] += 1
                body = case.body
                if isinstance(body, dict) and isinstance(body.get("top_k"), float):
                    # JSON Schema counts 7.0 as an integer; the contract refuses it.
                    assert case.call().status_code == 422
                    return
                response = case.call_and_validate()
                assert response.status_code < 500

            check()
        assert calls["/ask"] >= EXAMPLES, calls
