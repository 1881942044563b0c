"""A real, private OpenSSH server for end-to-end tests: Debian's sshd on a free loopback port, its own host key,
and one test user who logs in with a generated key (no passwords, no PAM, nothing touched outside `workdir`
except the test user, who is created and removed again).

    server = start_sshd(workdir, user="root")   # or a user it creates: start_sshd(workdir, user="x", groups=(...))
    subprocess.run(server.ssh_command("hearth --version"))
    server.stop()
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def ensure_openssh() -> None:
    """Install Debian's openssh-server and openssh-client when missing (root only)."""
    if Path(SSHD).exists() and shutil.which("ssh"):
        return
    if os.geteuid() != 0:
        raise RuntimeError("openssh-server is not installed and this user cannot apt-get install it")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "openssh-server", "openssh-client"],
    ):
        subprocess.run(command, check=True, capture_output=True, env=environment, timeout=600)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class SshServer:
    port: int
    user: str
    key: Path
    workdir: Path
    process: subprocess.Popen[bytes]
    created_user: bool = False
    created_groups: list[str] = field(default_factory=list)

    def ssh_command(self, remote: str, *, tty: bool = True) -> list[str]:
        """The ssh argv that runs `remote` as the test user on this server."""
        return [
            "ssh", "-i", str(self.key), "-p", str(self.port),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "BatchMode=yes", *(["-t"] if tty else []), f"{self.user}@127.0.0.1", remote,
        ]  # fmt: skip

    def log_tail(self, lines: int = 20) -> str:
        log = self.workdir / "sshd.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.created_user:
            subprocess.run(["userdel", "-r", self.user], capture_output=True)
        for group in self.created_groups:
            subprocess.run(["groupdel", group], capture_output=True)


def start_sshd(workdir: Path, *, user: str = "hearth-e2e", groups: tuple[str, ...] = ()) -> SshServer:
    """Start sshd for `user` (created if missing, with `groups`, which are created if missing). Root only."""
    ensure_openssh()
    workdir.mkdir(parents=True, exist_ok=True)
    created_groups = []
    for group in groups:
        try:
            grp.getgrnam(group)
        except KeyError:
            subprocess.run(["groupadd", group], check=True, capture_output=True)
            created_groups.append(group)
    created_user = False
    try:
        pwd.getpwnam(user)
        existing = True
    except KeyError:
        existing = False
    if not existing:
        command = ["useradd", "--create-home", "--shell", "/bin/bash"]
        if groups:
            command += ["--groups", ",".join(groups)]
        subprocess.run([*command, user], check=True, capture_output=True)
        created_user = True
    if created_user:
        # A new account has "!" as its password: locked, which sshd without PAM refuses even for key logins.
        # "*" means no password can match, but the account is not locked.
        subprocess.run(["usermod", "-p", "*", user], check=True, capture_output=True)
    host_key = workdir / "host_ed25519"
    client_key = workdir / "client_ed25519"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    keys = workdir / "authorized_keys"
    keys.write_text(client_key.with_suffix(".pub").read_text())
    keys.chmod(0o644)
    workdir.chmod(0o755)
    port = _free_port()
    config = workdir / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {keys}",
                f"PidFile {workdir / 'sshd.pid'}",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                f"AllowUsers {user}",
                "PermitRootLogin prohibit-password",
                "PermitUserEnvironment no",
                "X11Forwarding no",
                "",
            ]
        )
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    process = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config)], stderr=(workdir / "sshd.log").open("w"), stdout=subprocess.DEVNULL
    )
    server = SshServer(port, user, client_key, workdir, process, created_user, created_groups)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return server
        if process.poll() is not None:
            break
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"sshd did not start:\n{server.log_tail()}")
