#!/usr/bin/env python3
"""Writes the cgroup v2 hierarchy (cgroup2/t0, cgroup2/t1: two samples one second apart)
and the kubelet Summary document (kubelet/summary.json) of one node with three pods:
a burstable one (coredns), a guaranteed one with two containers (web), and a best-effort
one reported the way older kubelets do (no pod-level cpu/memory). The file layout and
contents follow a systemd-driver containerd node; the numbers are consistent between
the two sources (the summary carries the t1 values)."""
import json, os, shutil

os.chdir(os.path.dirname(os.path.abspath(__file__)))
pods = [
 dict(uid="5f2c8a41-9d3e-4b7a-8c1f-2e6d9b0a7c35", ns="kube-system", name="coredns-5d78c9869d-7xkqp", qos="burstable",
      cpu_limit=None, mem_limit=178257920,
      containers=[dict(name="coredns", id="3b9f2c7e1a4d5f6b8c0e9d2a7f1b3c5e4d6a8b0c2e4f6a8b1d3c5e7f9a0b2c4d", cpu_limit=None, mem_limit=178257920)]),
 dict(uid="a7e3c9d2-41b8-4f6e-9a2d-7c5b1e8f3d60", ns="shop", name="web-6b8f9d7c5-m4n2p", qos="guaranteed",
      cpu_limit=1.0, mem_limit=805306368,
      containers=[dict(name="nginx", id="7c1e3a5b9d2f4e6a8c0b1d3f5a7e9c2b4d6f8a0c1e3b5d7f9a2c4e6b8d0f1a3c", cpu_limit=0.5, mem_limit=536870912),
                  dict(name="log-shipper", id="e2d4f6a8c0b1e3d5f7a9c2b4e6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a5c7e9b2d4", cpu_limit=0.5, mem_limit=268435456)]),
 dict(uid="c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f", ns="monitoring", name="node-exporter-q8z5w", qos="besteffort",
      cpu_limit=None, mem_limit=None,
      containers=[dict(name="node-exporter", id="9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b", cpu_limit=None, mem_limit=None)]),
]
pause = {p["uid"]: "%064x" % (0xabc000 + i) for i, p in enumerate(pods)}
# (usage_usec, memory.current, anon, inactive_file, pgfault, pgmajfault) at t0 and t1
usage = {
 "coredns": [(812345678, 24117248, 14680064, 3145728, 51234, 12), (812385678, 24248320, 14811136, 3145728, 51301, 12)],
 "nginx": [(3456789012, 134217728, 67108864, 41943040, 923456, 321), (3457139012, 134479872, 67371008, 41943040, 923999, 321)],
 "log-shipper": [(987654321, 98566144, 73400320, 8388608, 412345, 45), (987754321, 98566144, 73400320, 8388608, 412400, 45)],
 "node-exporter": [(2345678901, 31457280, 20971520, 5242880, 77777, 3), (2345728901, 31457280, 20971520, 5242880, 77790, 3)],
}
PAUSE_MEM, PAUSE_ANON = 1351680, 229376

def memstat(cur, anon, inact, pgf, pgmaj):
    file = cur - anon - 1048576
    assert file >= inact >= 0, (cur, anon, inact)
    lines = [("anon", anon), ("file", file), ("kernel", 1048576), ("kernel_stack", 196608), ("pagetables", 266240),
      ("sec_pagetables", 0), ("percpu", 1440), ("sock", 0), ("vmalloc", 8192), ("shmem", 0), ("zswap", 0), ("zswapped", 0),
      ("file_mapped", file // 4), ("file_dirty", 4096), ("file_writeback", 0), ("swapcached", 0), ("anon_thp", 0), ("file_thp", 0),
      ("shmem_thp", 0), ("inactive_anon", anon), ("active_anon", 0), ("inactive_file", inact), ("active_file", file - inact),
      ("unevictable", 0), ("slab_reclaimable", 393216), ("slab_unreclaimable", 221184), ("slab", 614400),
      ("workingset_refault_anon", 0), ("workingset_refault_file", 12), ("workingset_activate_anon", 0), ("workingset_activate_file", 3),
      ("workingset_restore_anon", 0), ("workingset_restore_file", 0), ("workingset_nodereclaim", 0), ("pgscan", 0), ("pgsteal", 0),
      ("pgscan_kswapd", 0), ("pgscan_direct", 0), ("pgscan_khugepaged", 0), ("pgsteal_kswapd", 0), ("pgsteal_direct", 0),
      ("pgsteal_khugepaged", 0), ("pgfault", pgf), ("pgmajfault", pgmaj), ("pgrefill", 0), ("pgactivate", 120), ("pgdeactivate", 0),
      ("pglazyfree", 0), ("pglazyfreed", 0), ("zswpin", 0), ("zswpout", 0), ("thp_fault_alloc", 0), ("thp_collapse_alloc", 0)]
    return "".join(f"{k} {v}\n" for k, v in lines)

def cpustat(u):
    user = u * 7 // 10
    return f"usage_usec {u}\nuser_usec {user}\nsystem_usec {u-user}\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n"

def write(d, u, mem_limit, cpu_limit):
    os.makedirs(d, exist_ok=True)
    usec, cur, anon, inact, pgf, pgmaj = u
    open(f"{d}/cpu.stat", "w").write(cpustat(usec))
    open(f"{d}/memory.current", "w").write(f"{cur}\n")
    open(f"{d}/memory.stat", "w").write(memstat(cur, anon, inact, pgf, pgmaj))
    open(f"{d}/memory.max", "w").write("max\n" if mem_limit is None else f"{mem_limit}\n")
    open(f"{d}/cpu.max", "w").write("max 100000\n" if cpu_limit is None else f"{int(cpu_limit*100000)} 100000\n")
    open(f"{d}/cgroup.procs", "w").write("")

shutil.rmtree("cgroup2/t0", ignore_errors=True)
shutil.rmtree("cgroup2/t1", ignore_errors=True)
for t in (0, 1):
    root = f"cgroup2/t{t}/sys/fs/cgroup"
    os.makedirs(root, exist_ok=True)
    open(f"{root}/cgroup.controllers", "w").write("cpuset cpu io memory hugetlb pids rdma misc\n")
    os.makedirs(f"{root}/system.slice/containerd.service", exist_ok=True)
    open(f"{root}/system.slice/containerd.service/cgroup.procs", "w").write("")
    kp = f"{root}/kubepods.slice"
    for p in pods:
        u_ = p["uid"].replace("-", "_")
        if p["qos"] == "guaranteed":
            d = f"{kp}/kubepods-pod{u_}.slice"
        else:
            d = f"{kp}/kubepods-{p['qos']}.slice/kubepods-{p['qos']}-pod{u_}.slice"
            write(f"{kp}/kubepods-{p['qos']}.slice", (9999999999, 1073741824, 536870912, 104857600, 9999999, 999), None, None)
        tot = [0] * 6
        for c in p["containers"]:
            uu = usage[c["name"]][t]
            write(f"{d}/cri-containerd-{c['id']}.scope", uu, c["mem_limit"], c["cpu_limit"])
            tot = [a + b for a, b in zip(tot, uu)]
        pu = (1234 + t * 100, PAUSE_MEM, PAUSE_ANON, 0, 120, 0)
        write(f"{d}/cri-containerd-{pause[p['uid']]}.scope", pu, None, None)
        tot = [a + b for a, b in zip(tot, pu)]
        write(d, tuple(tot), p["mem_limit"], p["cpu_limit"])
    write(kp, (99999999999, 2147483648, 1073741824, 209715200, 99999999, 9999), None, None)

T = "2024-05-01T10:00:05Z"
NANOCORES = {"coredns": 4012345, "nginx": 350123456, "log-shipper": 100456789, "node-exporter": 50012345}

def ctr_stats(c, start):
    usec, cur, anon, inact, pgf, pgmaj = usage[c["name"]][1]
    ws = cur - inact
    mem = dict(time=T, usageBytes=cur, workingSetBytes=ws, rssBytes=anon, pageFaults=pgf, majorPageFaults=pgmaj)
    if c["mem_limit"]:
        mem["availableBytes"] = c["mem_limit"] - ws
    fs = lambda used, inodes_used: dict(time=T, availableBytes=41234567168, capacityBytes=105089261568, usedBytes=used, inodesFree=6345123, inodes=6553600, inodesUsed=inodes_used)
    return dict(name=c["name"], startTime=start,
                cpu=dict(time=T, usageNanoCores=NANOCORES[c["name"]], usageCoreNanoSeconds=usec * 1000),
                memory=mem, rootfs=fs(49152, 14), logs=fs(28672, 2))

summary = dict(node=dict(nodeName="test-node", systemContainers=[
    dict(name="kubelet", startTime="2024-04-30T08:00:00Z", cpu=dict(time=T, usageNanoCores=23456789, usageCoreNanoSeconds=987654321000), memory=dict(time=T, usageBytes=83886080, workingSetBytes=62914560, rssBytes=52428800, pageFaults=123, majorPageFaults=0)),
    dict(name="runtime", startTime="2024-04-30T08:00:00Z", cpu=dict(time=T, usageNanoCores=12345678, usageCoreNanoSeconds=456789123000), memory=dict(time=T, usageBytes=73400320, workingSetBytes=52428800, rssBytes=41943040, pageFaults=456, majorPageFaults=1))],
  startTime="2024-04-30T08:00:00Z",
  cpu=dict(time=T, usageNanoCores=612345678, usageCoreNanoSeconds=98765432100000),
  memory=dict(time=T, availableBytes=21474836480, usageBytes=4294967296, workingSetBytes=3221225472, rssBytes=1073741824, pageFaults=12345678, majorPageFaults=1234),
  network=dict(time=T, name="eth0", rxBytes=335372927, rxErrors=0, txBytes=1469013, txErrors=0, interfaces=[dict(name="eth0", rxBytes=335372927, rxErrors=0, txBytes=1469013, txErrors=0)]),
  fs=dict(time=T, availableBytes=41234567168, capacityBytes=105089261568, usedBytes=58493419520, inodesFree=6345123, inodes=6553600, inodesUsed=208477),
  runtime=dict(imageFs=dict(time=T, availableBytes=41234567168, capacityBytes=105089261568, usedBytes=5368709120, inodesFree=6345123, inodes=6553600, inodesUsed=45678)),
  rlimit=dict(time=T, maxpid=4194304, curproc=512)),
  pods=[])
starts = ["2024-04-30T08:01:12Z", "2024-05-01T09:12:45Z", "2024-04-30T08:00:40Z"]
for i, p in enumerate(pods):
    cs = [ctr_stats(c, starts[i]) for c in p["containers"]]
    pod = dict(podRef=dict(name=p["name"], namespace=p["ns"], uid=p["uid"]), startTime=starts[i], containers=cs)
    if i != 2:  # the last pod as an older kubelet reports it: no pod-level cpu/memory
        pod["cpu"] = dict(time=T, usageNanoCores=sum(c["cpu"]["usageNanoCores"] for c in cs) + 12345, usageCoreNanoSeconds=sum(c["cpu"]["usageCoreNanoSeconds"] for c in cs) + 1234000)
        m = dict(time=T, usageBytes=sum(c["memory"]["usageBytes"] for c in cs) + PAUSE_MEM, workingSetBytes=sum(c["memory"]["workingSetBytes"] for c in cs) + PAUSE_MEM, rssBytes=sum(c["memory"]["rssBytes"] for c in cs) + PAUSE_ANON, pageFaults=sum(c["memory"]["pageFaults"] for c in cs) + 120, majorPageFaults=sum(c["memory"]["majorPageFaults"] for c in cs))
        if p["mem_limit"]:
            m["availableBytes"] = p["mem_limit"] - m["workingSetBytes"]
        pod["memory"] = m
    if i != 2:  # the last pod uses the host network: the kubelet reports no pod network
        rx, tx, txe = [123456789, 9876543210][i], [98765432, 1234567890][i], [0, 2][i]
        pod["network"] = dict(time=T, name="eth0", rxBytes=rx, rxErrors=0, txBytes=tx, txErrors=txe,
                              interfaces=[dict(name="eth0", rxBytes=rx, rxErrors=0, txBytes=tx, txErrors=txe)])
    vols = [dict(time=T, availableBytes=12582912 if i == 0 else 8384512, capacityBytes=12595200 if i == 0 else 8388608, usedBytes=12288 if i == 0 else 4096, inodesFree=3074991, inodes=3075000, inodesUsed=9, name="kube-api-access-%s" % ["x7k2q", "p9d4m", "w3n8r"][i])]
    if i == 0:
        vols.append(dict(time=T, availableBytes=24678912, capacityBytes=24686592, usedBytes=7680, inodesFree=3074996, inodes=3075000, inodesUsed=4, name="config-volume"))
    if i == 1:
        vols.append(dict(time=T, availableBytes=9650065408, capacityBytes=10464022528, usedBytes=813957120, inodesFree=654301, inodes=655360, inodesUsed=1059, name="data", pvcRef=dict(name="web-data", namespace="shop")))
    pod["volume"] = vols
    pod["ephemeral-storage"] = dict(time=T, availableBytes=41234567168, capacityBytes=105089261568, usedBytes=86016, inodesFree=6345123, inodes=6553600, inodesUsed=20)
    pod["process_stats"] = dict(process_count=len(p["containers"]) * 3)
    summary["pods"].append(pod)
os.makedirs("kubelet", exist_ok=True)
with open("kubelet/summary.json", "w") as f:
    json.dump(summary, f, indent=2)
    f.write("\n")
