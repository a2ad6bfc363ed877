"""The external agents that come with the package: how to run Claude Code and mini-swe-agent.

Flags and environment are those measured with these CLIs (``docs/agents.md``: non-interactive
mode, permissions bypassed inside the workspace, telemetry and non-essential traffic off), with
the versions the install hints pin. Both get a throwaway HOME from
:class:`~pytest_agentspeed.agents.external.ExternalAgent`, so they read no user settings.
"""

from __future__ import annotations

from pytest_agentspeed.agents.external import AgentCommand, ExternalAgent

__all__ = ["CLAUDE_CODE", "MINI_SWE_AGENT", "PRESETS", "preset"]

CLAUDE_CODE = AgentCommand(
    name="claude-code",
    command=(
        "claude",
        "-p",
        "{instruction}",
        "--dangerously-skip-permissions",
        "--output-format",
        "json",
        "--model",
        "{model}",
    ),
    api="anthropic",
    base_url_env=("ANTHROPIC_BASE_URL",),
    key_env=("ANTHROPIC_API_KEY",),
    env={
        # As root, Claude Code refuses --dangerously-skip-permissions unless told it is in a
        # sandbox (research note).
        "IS_SANDBOX": "1",
        "DISABLE_TELEMETRY": "1",
        # Without it Claude Code sends a session-title request beside turn 1 (a side request);
        # a definition of one's own can set it to "" to measure that too.
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    },
    install="npm install -g @anthropic-ai/claude-code@2.1.332",
)

MINI_SWE_AGENT = AgentCommand(
    name="mini-swe-agent",
    command=(
        "mini",
        "-y",
        "--exit-immediately",
        "-m",
        "openai/{model}",
        # -c replaces the default config: name the built-in one first (mini --help).
        "-c",
        "mini.yaml",
        "-c",
        "agent.step_limit={max_turns}",
        "-c",
        "model.model_kwargs.api_base={base_url}/v1",
        "-t",
        "{instruction}",
    ),
    api="openai",
    # It reads the base URL from its config (above), the key from the environment (litellm).
    base_url_env=(),
    key_env=("OPENAI_API_KEY",),
    env={
        # Skips its first-run set-up questions.
        "MSWEA_CONFIGURED": "true",
        # litellm knows no price for a simulated model: do not fail on it.
        "MSWEA_COST_TRACKING": "ignore_errors",
        # Its .env, history and trajectory file go to the throwaway HOME.
        "MSWEA_GLOBAL_CONFIG_DIR": "{home}/.config/mini-swe-agent",
        # litellm would fetch a model price list from the network at start.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    },
    install="pip install mini-swe-agent==2.4.6",
)

#: The presets by name, in the order ``--help`` lists them.
PRESETS = {spec.name: spec for spec in (CLAUDE_CODE, MINI_SWE_AGENT)}


def preset(name: str) -> ExternalAgent:
    """A new agent running the preset ``name`` (a key of :data:`PRESETS`)."""
    return ExternalAgent(PRESETS[name])
