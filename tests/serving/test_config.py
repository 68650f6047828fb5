"""Configuration: environment variables with flags on top, validated."""

from __future__ import annotations

import pytest

from serving import config


def test_env_defaults_and_flag_precedence() -> None:
    env = {"MODEL_NAME": "m", "MODEL_URI": "/s", "SERVING_MODE": "throughput", "PORT": "9001",
           "MAX_BATCH_SIZE": "8", "ALLOW_NONFINITE": "true", "MAX_BATCH_WAIT_MS": "0.5"}
    cfg = config.load([], env)
    assert (cfg.model_name, cfg.model_uri, cfg.mode, cfg.port) == ("m", "/s", "throughput", 9001)
    assert cfg.max_batch_size == 8 and cfg.allow_nonfinite and cfg.max_batch_wait_ms == 0.5
    assert cfg.host == "127.0.0.1"
    cfg = config.load(["--port", "9002", "--mode", "latency", "--no-allow-nonfinite"], env)
    assert (cfg.port, cfg.mode, cfg.allow_nonfinite) == (9002, "latency", False)


@pytest.mark.parametrize(("argv", "env", "needle"), [
    (["--mode", "fast"], {}, "invalid choice: 'fast'"),
    ([], {"SERVING_MODE": "fast"}, "$SERVING_MODE='fast' is not one of latency, throughput"),
    ([], {"PORT": "http"}, "$PORT='http' is not a valid int"),
    (["--max-batch-size", "0"], {}, "must be >= 1"),
])
def test_bad_values_exit_2_with_a_message(argv: list[str], env: dict[str, str], needle: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        config.load(argv, env)
    assert exc.value.code == 2
    assert needle in capsys.readouterr().err


def test_intra_op_threads_default_to_cpu_share() -> None:
    assert config.ServingConfig(intra_op_threads=3).tf_intra_op_threads == 3
    cpus = config.cpu_limit()
    assert config.ServingConfig(workers=1).tf_intra_op_threads == cpus
    assert config.ServingConfig(workers=cpus * 2).tf_intra_op_threads == 1
