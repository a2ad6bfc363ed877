"""The external agents that come with the package: how to run Claude Code, Codex CLI and
mini-swe-agent.

Flags and environment are those measured with these CLIs (``docs/agents.md``: non-interactive
mode, permissions bypassed inside the workspace, telemetry and non-essential traffic off), with
the versions the install hints pin. Both get a throwaway HOME from
:class:`~pytest_agentspeed.agents.external.ExternalAgent`, so they read no user settings.
"""

from __future__ import annotations

from pytest_agentspeed.agents.external import AgentCommand, ExternalAgent

__all__ = ["CLAUDE_CODE", "CODEX", "MINI_SWE_AGENT", "PRESETS", "preset"]

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

#: Codex's provider for the session: the proxy, on the Responses wire (the only one Codex
#: takes), with the placeholder key read from OPENAI_API_KEY. Codex's own retries are kept:
#: a retried request is an attempt of the same turn, as with the other agents.
_CODEX_PROVIDER = (
    'model_providers.agentspeed={name="agentspeed", base_url="{base_url}/v1", '
    'env_key="OPENAI_API_KEY", wire_api="responses"}'
)

CODEX = AgentCommand(
    name="codex",
    command=(
        "codex",
        "exec",
        "--skip-git-repo-check",
        # Approvals and Codex's own sandbox off: it works in the session's workspace, and
        # `sandbox = "bwrap"` confines it like any agent.
        "--dangerously-bypass-approvals-and-sandbox",
        "--ephemeral",
        # Its events as JSON lines: the end of them is kept in the session's process record.
        "--json",
        "-m",
        "{model}",
        # Commands run in a plain shell with the environment the session gives: a login
        # shell's /etc/profile would reset PATH and lose the project's virtualenv (the task's
        # own check then fails inside the session with "python: command not found").
        "-c",
        "allow_login_shell=false",
        # Telemetry off, no update check: as for Claude Code.
        "-c",
        "analytics.enabled=false",
        "-c",
        "check_for_update_on_startup=false",
        "-c",
        "model_provider=agentspeed",
        "-c",
        _CODEX_PROVIDER,
        "--",
        "{instruction}",
    ),
    api="responses",
    base_url_env=(),
    key_env=("OPENAI_API_KEY",),
    env={
        # Its state (config, logs, sessions) goes to $HOME/.codex in the throwaway HOME, not
        # to a CODEX_HOME of the user's.
        "CODEX_HOME": "",
    },
    install="npm install -g @openai/codex@0.171.0",
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
PRESETS = {spec.name: spec for spec in (CLAUDE_CODE, CODEX, MINI_SWE_AGENT)}


def preset(name: str) -> ExternalAgent:
    """A new agent running the preset ``name`` (a key of :data:`PRESETS`)."""
    return ExternalAgent(PRESETS[name])
