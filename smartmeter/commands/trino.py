"""`./lakehouse trino`: the interactive Trino CLI."""

import subprocess

from smartmeter.mode import docker_exec, mode

NAME = "trino"
HELP = "the interactive Trino CLI (arguments go to it)"
PASSTHROUGH = "arguments for the Trino CLI"


def run(args, settings) -> int:
    if mode(settings) == "docker":
        return docker_exec("trino-coordinator", "trino", *args.args)
    from smartmeter.native import artifacts
    from smartmeter.native.stack import make_context

    ctx = make_context(settings)
    jar = artifacts.fetch(ctx.layout, artifacts.TRINO_CLI)
    # The CLI loads JLine's native terminal library; Java 25 warns unless native access is allowed.
    command = [ctx.java, "--enable-native-access=ALL-UNNAMED", "-jar", str(jar),
               f"--server={settings.trino_url}", f"--user={settings.trino_user}"]
    env = ctx.env()
    if settings.trino_auth == "password":
        # The CLI reads the password from TRINO_PASSWORD when given --password.
        command += ["--password", f"--truststore-path={settings.trino_certificate}"]
        env["TRINO_PASSWORD"] = settings.trino_password
    return subprocess.call(command + args.args, env=env)
