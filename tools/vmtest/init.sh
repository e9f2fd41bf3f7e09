#!/bin/busybox sh
# /init of the test VM (busybox): mounts, loads the conntrack modules, runs the tests
# (/run-tests.sh: gtest.sh or run.sh --script), powers off. Everything it reports is a line
# starting with CTBPF-VM- on the console.
# Links every applet but sh: /bin/sh is dash (see run.sh), and --install leaves it alone.
/bin/busybox --install -s /bin
export PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
mount -t debugfs nodev /sys/kernel/debug 2>/dev/null
# cgroup v2: the workload scenarios put their processes in cgroups of their own.
mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null

kernel=$(uname -r)
for m in $(cat /etc/ctbpf-modules); do
	insmod "/lib/modules/$m" || echo "CTBPF-VM-RESULT kernel=$kernel backend=none test=boot pass=0 detail=insmod-$(basename "$m")-failed"
done
ip link set lo up

/bin/sh /run-tests.sh
echo "CTBPF-VM-DONE kernel=$kernel"
sync
poweroff -f
