"""Drives pve-sim with proxmoxer exactly as a user's script would drive a real Proxmox VE (9.1 or 8.4,
as PVE_EXPECTED_RELEASE says).

Environment: PVE_HOST, PVE_PORT, PVE_PASSWORD (root@pam). Exits non-zero at the first behaviour
that differs from real Proxmox, printing what was expected and what came back.
"""

import os
import sys
import time

from proxmoxer import ProxmoxAPI
from proxmoxer.core import ResourceException

HOST = os.environ["PVE_HOST"]
PORT = int(os.environ["PVE_PORT"])
PASSWORD = os.environ["PVE_PASSWORD"]
NODE = "pve"
checks = 0


def check(condition, what):
    global checks
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    checks += 1


def wait_task(api, upid, timeout=60.0):
    """Polls the task like proxmoxer's users do (proxmoxer.tools.Tasks does the same)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = api.nodes(NODE).tasks(upid).status.get()
        if status["status"] == "stopped":
            return status
        time.sleep(0.05)
    check(False, f"task {upid} did not finish within {timeout}s")


# 1. Login by password (ticket + CSRF token handled by proxmoxer).
api = ProxmoxAPI(HOST, port=PORT, user="root@pam", password=PASSWORD, verify_ssl=False)
version = api.version.get()
EXPECTED_RELEASE = os.environ["PVE_EXPECTED_RELEASE"]
check(
    version["release"] == EXPECTED_RELEASE
    and version["version"].startswith(EXPECTED_RELEASE + "."),
    f"version {EXPECTED_RELEASE}.x, got {version}",
)

vmid = int(api.cluster.nextid.get())
check(vmid >= 100, f"nextid is a VMID, got {vmid}")

# 2. Create a VM with a disk and a NIC, and wait for its task.
upid = api.nodes(NODE).qemu.post(
    vmid=vmid,
    name="proxmoxer-vm",
    memory=1024,
    cores=2,
    scsihw="virtio-scsi-single",
    scsi0="local-lvm:4",
    net0="virtio,bridge=vmbr0",
)
check(upid.startswith(f"UPID:{NODE}:"), f"create answers a UPID, got {upid!r}")
status = wait_task(api, upid)
check(status["exitstatus"] == "OK", f"create task OK, got {status}")

config = api.nodes(NODE).qemu(vmid).config.get()
check(config["name"] == "proxmoxer-vm", f"name kept, got {config}")
check(config["net0"].startswith("virtio=BC:24:11:"), f"net0 gets a generated MAC, got {config['net0']}")
check(
    config["scsi0"].startswith(f"local-lvm:vm-{vmid}-disk-0") and "size=4G" in config["scsi0"],
    f"scsi0 rewritten to the allocated volume, got {config['scsi0']}",
)

# 3. Start, read status, stop.
wait_task(api, api.nodes(NODE).qemu(vmid).status.start.post())
current = api.nodes(NODE).qemu(vmid).status.current.get()
check(current["status"] == "running", f"running after start, got {current['status']}")
wait_task(api, api.nodes(NODE).qemu(vmid).status.stop.post())
current = api.nodes(NODE).qemu(vmid).status.current.get()
check(current["status"] == "stopped", f"stopped after stop, got {current['status']}")

# 4. Delete.
status = wait_task(api, api.nodes(NODE).qemu(vmid).delete(purge=1))
check(status["exitstatus"] == "OK", f"delete task OK, got {status}")
vmids = [int(vm["vmid"]) for vm in api.nodes(NODE).qemu.get()]
check(vmid not in vmids, f"VM {vmid} gone after delete, list is {vmids}")

# 5. Login by API token (created through the API, as pveum would).
api.access.users.post(userid="proxmoxer@pve", password="a-long-test-password")
token = api.access.users("proxmoxer@pve").token("ci").post(privsep=1)
check(token["full-tokenid"] == "proxmoxer@pve!ci", f"token create answers full-tokenid, got {token}")
tapi = ProxmoxAPI(
    HOST, port=PORT, user="proxmoxer@pve", token_name="ci", token_value=token["value"], verify_ssl=False
)
check(tapi.version.get()["version"] == version["version"], "token login reads /version")

# 6. A permission error, as proxmoxer reports it.
try:
    tapi.nodes(NODE).qemu(vmid).status.current.get()
    check(False, "a token without ACLs must not read a VM's status")
except ResourceException as error:
    check(error.status_code == 403, f"403 for a missing privilege, got {error.status_code}")
    check(
        "Permission check failed" in str(error),
        f"proxmoxer shows Proxmox's reason, got {error}",
    )

print(f"proxmoxer: {checks} checks passed")
