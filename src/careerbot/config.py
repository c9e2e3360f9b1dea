"""Settings, read from CAREERBOT_* environment variables or passed in."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

BUNDLED_MODEL = "all-MiniLM-L6-v2"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAREERBOT_", extra="forbid")

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    # The bundled model's name, or the path of a local sentence-transformers model.
    model: str = BUNDLED_MODEL
    # Word pieces of answer text per passage; question and speaker are embedded on top.
    passage_tokens: int = Field(default=128, ge=16, le=200)
    top_k: int = Field(default=3, ge=1, le=10)
