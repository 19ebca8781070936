"""The processes of one cluster test: MariaDB servers (one plain server, or a
three-node Galera cluster), gatehouse instances and nginx.

Every process is started in a session of its own, so a Ctrl-C aimed at the
test does not reach the servers half-way through a check, and its process
group id is written to WORK/pids so that `run` can end whatever is left
should this program die without cleaning up.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time

MARIADBD = "/usr/sbin/mariadbd"
GALERA_PROVIDER = "/usr/lib/galera/libgalera_smm.so"


class StartupError(Exception):
    """A server that the test needs did not come up."""


def tail(path, lines=20):
    """The last lines of a log file, for failure messages."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def port_is_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def require_free_ports(ports):
    busy = [p for p in ports if not port_is_free(p)]
    if busy:
        raise StartupError(
            f"ports {busy} are in use on 127.0.0.1 (another cluster test running?)"
        )


def wait_for_port(port, timeout, process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


class ProcessTable:
    """Every long-running process of the test, by name."""

    def __init__(self, work):
        self.pid_dir = os.path.join(work, "pids")
        os.makedirs(self.pid_dir, exist_ok=True)
        self.running = {}

    def start(self, name, argv, log_path, env=None, cwd=None):
        if name in self.running:
            raise RuntimeError(f"{name} is already running")
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        self.running[name] = process
        with open(os.path.join(self.pid_dir, f"{name}.pid"), "w") as f:
            f.write(f"{process.pid}\n")
        return process

    def get(self, name):
        return self.running.get(name)

    def signal_group(self, name, sig):
        """Signals the process and whatever it started (SST scripts, nginx
        workers), which share its process group."""
        process = self.running[name]
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass

    def forget(self, name):
        self.running.pop(name, None)
        try:
            os.unlink(os.path.join(self.pid_dir, f"{name}.pid"))
        except FileNotFoundError:
            pass

    def stop(self, name, sig=signal.SIGTERM, timeout=20):
        """Stops a process gently, then firmly; returns its exit status."""
        process = self.running.get(name)
        if process is None:
            return None
        if process.poll() is None:
            # A paused process would never act on the signal.
            self.signal_group(name, signal.SIGCONT)
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Children of the process (an SST rsync daemon, say) go too.
        self.signal_group(name, signal.SIGKILL)
        process.wait()
        self.forget(name)
        return process.returncode

    def stop_all(self):
        for name in reversed(list(self.running)):
            self.stop(name, signal.SIGKILL if name.startswith("db-") else signal.SIGTERM)


# --- MariaDB -------------------------------------------------------------------


class MariaDbServer:
    """One mariadbd with its own data directory, socket and ports, run as the
    mysql user."""

    def __init__(self, processes, root, name, port):
        self.processes = processes
        self.name = name
        self.port = port
        self.dir = os.path.join(root, name)
        self.datadir = os.path.join(self.dir, "data")
        self.socket = os.path.join(self.dir, "mysqld.sock")
        self.config = os.path.join(self.dir, "my.cnf")
        self.error_log = os.path.join(self.dir, "error.log")
        self.console_log = os.path.join(self.dir, "console.log")

    @property
    def process_name(self):
        return f"db-{self.name}"

    def url(self, database):
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    def server_settings(self):
        return [
            f"datadir={self.datadir}",
            f"socket={self.socket}",
            f"pid-file={os.path.join(self.dir, 'mysqld.pid')}",
            f"port={self.port}",
            "bind-address=127.0.0.1",
            f"log-error={self.error_log}",
            "skip-name-resolve",
            "innodb_buffer_pool_size=128M",
            "innodb_log_file_size=32M",
            "max_connections=500",
        ]

    def prepare(self):
        """A fresh data directory with the system tables."""
        os.makedirs(self.datadir, exist_ok=True)
        shutil.chown(self.dir, "mysql", "mysql")
        shutil.chown(self.datadir, "mysql", "mysql")
        with open(self.config, "w") as f:
            f.write("[mariadbd]\n" + "\n".join(self.server_settings()) + "\n")
        result = subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                "--user=mysql",
                f"--datadir={self.datadir}",
                "--skip-test-db",
                "--auth-root-authentication-method=socket",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise StartupError(f"mariadb-install-db for {self.name} failed:\n{result.stdout}{result.stderr}")

    def start(self, *extra_args):
        self.processes.start(
            self.process_name,
            [MARIADBD, f"--defaults-file={self.config}", "--user=mysql", *extra_args],
            self.console_log,
        )

    @property
    def process(self):
        return self.processes.get(self.process_name)

    def is_running(self):
        return self.process is not None and self.process.poll() is None

    def sql(self, statement, timeout=15):
        """Runs SQL as root over the server's socket; returns its rows as text."""
        result = subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot", "-N", "-B", "-e", statement],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{self.name}: {statement!r} failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def status_value(self, variable):
        try:
            row = self.sql(f"SHOW GLOBAL STATUS LIKE '{variable}'", timeout=5)
        except (RuntimeError, subprocess.TimeoutExpired):
            return None
        return row.split("\t", 1)[1] if "\t" in row else None

    def wait_until_answers(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_running():
                raise StartupError(f"{self.name} exited while starting:\n{tail(self.error_log)}")
            try:
                self.sql("SELECT 1", timeout=5)
                return
            except (RuntimeError, subprocess.TimeoutExpired):
                time.sleep(0.3)
        raise StartupError(f"{self.name} did not answer within {timeout} s:\n{tail(self.error_log)}")

    def allow_root_over_tcp(self):
        # skip-name-resolve makes 127.0.0.1 a host of its own, apart from
        # 'localhost', whose root only logs in over the socket.
        self.sql(
            "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';"
            "GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
        )

    def create_database(self, name):
        self.sql(f"CREATE DATABASE IF NOT EXISTS `{name}`")

    def kill(self):
        self.processes.signal_group(self.process_name, signal.SIGKILL)
        self.process.wait()
        self.processes.forget(self.process_name)

    def pause(self):
        self.processes.signal_group(self.process_name, signal.SIGSTOP)

    def resume(self):
        self.processes.signal_group(self.process_name, signal.SIGCONT)

    def stop(self, timeout=60):
        """A clean shutdown (SIGTERM), as an operator's restart would do."""
        return self.processes.stop(self.process_name, signal.SIGTERM, timeout)


class PlainMariaDb:
    """One private MariaDB server for all three gatehouse instances."""

    def __init__(self, processes, root, port):
        self.server = MariaDbServer(processes, root, "mariadb", port)
        self.nodes = [self.server] * 3

    def ports(self):
        return [self.server.port]

    def logs(self):
        return [self.server.error_log]

    def start(self):
        self.server.prepare()
        self.server.start()
        self.server.wait_until_answers()
        self.server.allow_root_over_tcp()

    def restart(self):
        self.server.start()
        self.server.wait_until_answers()


class GaleraNode(MariaDbServer):
    def __init__(self, processes, root, index, ports):
        super().__init__(processes, root, f"galera{index}", ports["sql"])
        self.index = index
        self.ports = ports
        self.all_ports = None  # set by the cluster

    def server_settings(self):
        peers = ",".join(f"127.0.0.1:{p['galera']}" for p in self.all_ports)
        provider_options = ";".join(
            [
                f"gmcast.listen_addr=tcp://127.0.0.1:{self.ports['galera']}",
                f"ist.recv_addr=127.0.0.1:{self.ports['ist']}",
            ]
        )
        return super().server_settings() + [
            # What Galera requires of the server; its own settings stay at
            # their defaults (no wsrep_sync_wait: causal reads are gatehouse's
            # business).
            "binlog_format=ROW",
            "default_storage_engine=InnoDB",
            "innodb_autoinc_lock_mode=2",
            "wsrep_on=ON",
            f"wsrep_provider={GALERA_PROVIDER}",
            "wsrep_cluster_name=gatehouse_cluster_test",
            f"wsrep_cluster_address=gcomm://{peers}",
            f"wsrep_node_name={self.name}",
            f"wsrep_node_address=127.0.0.1:{self.ports['galera']}",
            f"wsrep_node_incoming_address=127.0.0.1:{self.port}",
            "wsrep_sst_method=rsync",
            f"wsrep_sst_receive_address=127.0.0.1:{self.ports['sst']}",
            f'wsrep_provider_options="{provider_options}"',
        ]

    def wait_until_synced(self, cluster_size, timeout=120):
        deadline = time.monotonic() + timeout
        state = size = None
        while time.monotonic() < deadline:
            if not self.is_running():
                raise StartupError(f"{self.name} exited while joining:\n{tail(self.error_log, 40)}")
            state = self.status_value("wsrep_local_state_comment")
            size = self.status_value("wsrep_cluster_size")
            if state == "Synced" and size is not None and int(size) >= cluster_size:
                return
            time.sleep(0.3)
        raise StartupError(
            f"{self.name} not synced within {timeout} s (state {state}, cluster size {size}):\n"
            f"{tail(self.error_log, 40)}"
        )

    def recovered_position(self):
        """After a crash the node knows its last transaction only once InnoDB
        has been asked (what galera_recovery does for systemd); joining with
        that position lets the cluster send just the missing writes (IST)."""
        log = os.path.join(self.dir, "recover.log")
        subprocess.run(
            [MARIADBD, f"--defaults-file={self.config}", "--user=mysql", "--wsrep-recover", f"--log-error={log}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )
        match = re.findall(r"WSREP: Recovered position: (\S+)", tail(log, 200))
        return match[-1] if match else None


class GaleraCluster:
    """Three MariaDB Galera nodes on loopback, node 1 bootstrapping."""

    def __init__(self, processes, root, node_ports):
        self.nodes = [GaleraNode(processes, root, i + 1, p) for i, p in enumerate(node_ports)]
        for node in self.nodes:
            node.all_ports = node_ports

    def ports(self):
        return [port for node in self.nodes for port in node.ports.values()]

    def logs(self):
        return [node.error_log for node in self.nodes]

    def start(self):
        for node in self.nodes:
            node.prepare()
        first, *others = self.nodes
        first.start("--wsrep-new-cluster")
        first.wait_until_synced(1)
        first.allow_root_over_tcp()
        # One joiner at a time: an rsync transfer holds its donor.
        for size, node in enumerate(others, start=2):
            node.start()
            node.wait_until_synced(size)

    def restart_node(self, node):
        position = node.recovered_position()
        node.start(*([f"--wsrep-start-position={position}"] if position else []))
        node.wait_until_synced(len(self.nodes))
        return position

    def transfer_kind(self, node, log_offset):
        """How the node caught up since the log had `log_offset` bytes: IST
        (the missing writes only) or SST (a full copy)."""
        with open(node.error_log, "rb") as f:
            f.seek(log_offset)
            log = f.read().decode("utf-8", "replace")
        if "IST received" in log:
            return "IST"
        if "SST complete" in log or "SST received" in log:
            return "SST"
        return "unknown"


# --- gatehouse -----------------------------------------------------------------


class Gatehouse:
    """One gatehouse server process and the settings it runs with."""

    def __init__(self, processes, binary, root, name, port, database_url, settings):
        self.processes = processes
        self.binary = binary
        self.name = name
        self.port = port
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.log = os.path.join(self.dir, "gatehouse.log")
        self.database_url = database_url
        self.settings = dict(settings)

    def environment(self, **extra):
        # Only what is set here: no JWT_SECRET or .env from whoever runs the test.
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": self.dir,
            "LANG": "C.UTF-8",
            "DATABASE_URL": self.database_url,
            "BIND_ADDR": f"127.0.0.1:{self.port}",
            "RUST_LOG": "info",
        }
        env.update(self.settings)
        env.update(extra)
        return env

    def start(self):
        with open(self.log, "ab") as log:
            log.write(f"=== started at {time.strftime('%H:%M:%S')}\n".encode())
        return self.processes.start(
            f"gatehouse-{self.name}", [self.binary, "serve"], self.log, env=self.environment(), cwd=self.dir
        )

    @property
    def process(self):
        return self.processes.get(f"gatehouse-{self.name}")

    def exit_status(self):
        return None if self.process is None else self.process.poll()

    def stop(self):
        return self.processes.stop(f"gatehouse-{self.name}", signal.SIGTERM, 15)

    def forget_exited(self):
        self.processes.forget(f"gatehouse-{self.name}")

    def cli(self, *args, timeout=60, **env):
        """Runs a gatehouse command with this instance's database and settings."""
        result = subprocess.run(
            [self.binary, *args],
            env=self.environment(**env),
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        with open(self.log, "a") as log:
            log.write(f"=== cli {' '.join(args)}: exit {result.returncode}\n{result.stdout}{result.stderr}")
        return result


# --- nginx ---------------------------------------------------------------------

NGINX_CONFIG = """\
worker_processes 1;
daemon off;
user nobody nogroup;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    upstream gatehouse {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://gatehouse;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            # Each request goes to the instance round-robin picked, so a
            # failing instance shows instead of being hidden by a retry.
            proxy_next_upstream off;
            proxy_read_timeout 30s;
        }}
    }}
}}
"""


class Nginx:
    """nginx in front of the instances, round-robin, as a child process."""

    def __init__(self, processes, root, port, upstream_ports):
        self.processes = processes
        self.port = port
        self.dir = os.path.join(root, "nginx")
        self.upstream_ports = upstream_ports

    def start(self):
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        shutil.chown(os.path.join(self.dir, "tmp"), "nobody", "nogroup")
        servers = "\n".join(f"        server 127.0.0.1:{p};" for p in self.upstream_ports)
        config = os.path.join(self.dir, "nginx.conf")
        with open(config, "w") as f:
            f.write(NGINX_CONFIG.format(dir=self.dir, port=self.port, servers=servers))
        process = self.processes.start(
            "nginx",
            ["nginx", "-p", self.dir, "-c", config, "-e", os.path.join(self.dir, "error.log")],
            os.path.join(self.dir, "console.log"),
        )
        if not wait_for_port(self.port, 10, process):
            raise StartupError(f"nginx did not start:\n{tail(os.path.join(self.dir, 'console.log'))}")

    def stop(self):
        self.processes.stop("nginx", signal.SIGQUIT, 10)
