#!/bin/sh
# Drives hutch-runtime as an engine does (runc's command line) over bundles made here, and
# checks what the containers do and what is left behind.
# usage: test.sh HUTCH_RUNTIME BUSYBOX_ROOTFS
set -u
# Engines run the runtime under a subreaper (conmon, containerd's shim) that reaps the
# container once the runtime has exited; so does this test.
if [ -z "${HUTCH_RUNTIME_TEST_REAPER:-}" ]; then
  HUTCH_RUNTIME_TEST_REAPER=1 exec python3 "$(dirname "$0")/../../tests/reaper.py" "$0" "$@"
fi
rt=$1 rootfs=$(cd "$2" && pwd)
. "$(dirname "$0")/../../tests/checks.sh"
contains() {  # contains NAME NEEDLE HAYSTACK
  case "$3" in
    *"$2"*) passed=$((passed + 1)) ;;
    *) failures=$((failures + 1)); printf 'FAILED %s\n  %s not in: %s\n' "$1" "$2" "$3" ;;
  esac
}
scratch=$(mktemp -d)
root=$scratch/root
trap 'for c in $("$rt" --root "$root" list -q 2>/dev/null); do "$rt" --root "$root" delete -f "$c"; done; rm -rf "$scratch"' EXIT
R() { "$rt" --root "$root" "$@"; }
gone() {  # gone PID: "no" once the process has ended and been reaped (2 s at most)
  for _ in $(seq 100); do [ -e "/proc/$1" ] || { echo no; return; }; sleep 0.02; done
  echo yes
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
status() { R state "$1" | json 'd["status"]'; }
busybox=$(command -v busybox || echo /bin/busybox)

# bundle DIR ARGS_JSON [EXTRA_PYTHON]: a bundle over the test rootfs, as `runc spec` writes
# it, the process's args set and changed by EXTRA_PYTHON (d is the config).
bundle() {
  mkdir -p "$1/out"
  rm -f "$1/config.json"
  (cd "$1" && runc spec) || exit 1
  python3 - "$1" "$2" "${3:-}" "$rootfs" <<'EOF'
import json, sys
path, args, extra, rootfs = sys.argv[1:]
d = json.load(open(path + "/config.json"))
d["root"] = {"path": rootfs, "readonly": True}
d["process"]["terminal"] = False
d["process"]["args"] = json.loads(args)
d["hostname"] = "box"
d["mounts"].append({"destination": "/mnt", "type": "bind", "source": "out",
                    "options": ["rbind", "rw"]})
exec(extra)
json.dump(d, open(path + "/config.json", "w"))
EOF
}

# ---- the lifecycle: create, start, state, exec, ps, pause, resume, kill, delete ----------
b=$scratch/b1
bundle "$b" '["sh", "-c", "trap \"echo got TERM; exit 3\" TERM; echo started on $(hostname) as pid $$; while :; do sleep 0.1; done"]'
R create --bundle "$b" --pid-file "$b/pid" c1 >"$b/stdout" 2>"$b/stderr"
check "create" 0 $?
check "created" created "$(status c1)"
check "pid file" "$(R state c1 | json 'd["pid"]')" "$(cat "$b/pid")"
check "waits before start" "" "$(cat "$b/stdout")"
cgroups=$(python3 -c "import json; print(' '.join(json.load(open('$root/c1/state.json'))['cgroup']))")
check "has a cgroup" yes "$([ -n "$cgroups" ] && echo yes)"
R start c1; check "start" 0 $?
R start c1 2>/dev/null; check "start twice" 1 $?
sleep 0.3
check "its command runs as PID 1" "started on box as pid 1" "$(cat "$b/stdout")"
check "running" running "$(status c1)"
check "exec" "in box" "$(R exec c1 sh -c 'echo in $(hostname)')"
R exec c1 sh -c 'exit 7'; check "exec's exit status" 7 $?
R exec --env X=1 --cwd /etc c1 sh -c 'echo $X $(pwd)' >"$b/exec"; check "exec --env --cwd" "1 /etc" "$(cat "$b/exec")"
R exec c1 no-such-command 2>/dev/null; check "exec of a missing command" 1 $?
cat >"$b/process.json" <<'EOF'
{"args": ["sh", "-c", "echo $A $(id -u):$(id -g)"], "cwd": "/", "env": ["A=process"],
 "user": {"uid": 1000, "gid": 1000}}
EOF
check "exec --process" "process 1000:1000" "$(R exec --process "$b/process.json" c1)"
R exec -d --pid-file "$b/exec.pid" c1 sleep 60; check "exec --detach" 0 $?
exec_pid=$(cat "$b/exec.pid")
check "the detached process runs" yes "$(kill -0 "$exec_pid" 2>/dev/null && echo yes)"
pids=$(R ps --format json c1)
contains "ps lists the init" "$(cat "$b/pid")" "$pids"
contains "ps lists the exec'd process" "$exec_pid" "$pids"
R pause c1; check "paused" paused "$(status c1)"
R exec c1 true 2>/dev/null; check "no exec while paused" 1 $?
R resume c1; check "resumed" running "$(status c1)"
R delete c1 2>"$b/delete"; check "no delete while running" 1 $?
contains "says why" "cannot delete a container that is running" "$(cat "$b/delete")"
R kill c1; sleep 0.5
check "SIGTERM by default" "got TERM" "$(tail -n1 "$b/stdout")"
check "stopped" stopped "$(status c1)"
R kill c1 KILL 2>"$b/kill"; check "kill of a stopped one" 1 $?
contains "engines read this" "container not running" "$(cat "$b/kill")"
R kill --all c1 KILL; check "kill --all of the rest" 0 $?
sleep 0.2
check "the exec'd process is gone" no "$(gone "$exec_pid")"
R delete c1; check "delete" 0 $?
check "its state is gone" no "$([ -e "$root/c1" ] && echo yes || echo no)"
for d in $cgroups; do check "its cgroup is gone ($d)" no "$([ -e "$d" ] && echo yes || echo no)"; done
R state c1 2>"$b/state"; check "state of a deleted one" 1 $?
contains "does not exist" "does not exist" "$(cat "$b/state")"

# ---- delete --force of a running container and of a created one ------------------------
b=$scratch/b2
bundle "$b" '["sleep", "60"]' 'd["linux"]["resources"]["pids"] = {"limit": 20}'
R create --bundle "$b" c2 && R start c2
pid=$(R state c2 | json 'd["pid"]')
cgroups=$(python3 -c "import json; print(' '.join(json.load(open('$root/c2/state.json'))['cgroup']))")
pids_max=
for d in $cgroups; do [ -f "$d/pids.max" ] && pids_max=$(cat "$d/pids.max") && pids_dir=$d; done
check "pids limit" 20 "$pids_max"
echo '{"pids": {"limit": 30}}' | R update --resources - c2; check "update" 0 $?
check "update writes it" 30 "$(cat "$pids_dir/pids.max")"
R update --pids-limit 40 c2; check "update --pids-limit" 40 "$(cat "$pids_dir/pids.max")"
R delete --force c2; check "delete --force" 0 $?
check "killed" no "$(gone "$pid")"
for d in $cgroups; do check "cgroup removed ($d)" no "$([ -e "$d" ] && echo yes || echo no)"; done
R create --bundle "$b" c3
pid=$(R state c3 | json 'd["pid"]')
R delete c3; check "a created one deletes" 0 $?
check "and is killed" no "$(gone "$pid")"

# ---- run: create + start + wait, the status passed on -----------------------------------
b=$scratch/b3
bundle "$b" '["sh", "-c", "echo ran; exit 5"]'
check "run" ran "$(R run --bundle "$b" c4)"
R run --bundle "$b" c4 >/dev/null; check "run's exit status" 5 $?
check "run leaves nothing" no "$([ -e "$root/c4" ] && echo yes || echo no)"

# ---- hooks ------------------------------------------------------------------------------
b=$scratch/b4
bundle "$b" '["sleep", "60"]' "
d['hooks'] = {
  'createRuntime': [{'path': '/bin/sh', 'args': ['sh', '-c', 'cat > $b/out/create-runtime']}],
  'createContainer': [{'path': '$busybox', 'args': ['sh', '-c', 'hostname > /mnt/create-container']}],
  'startContainer': [{'path': '$busybox', 'args': ['sh', '-c', 'echo \$HOOK > /mnt/start-container'], 'env': ['HOOK=start']}],
  'poststart': [{'path': '/bin/sh', 'args': ['sh', '-c', 'cat > $b/out/poststart']}],
  'poststop': [{'path': '/bin/sh', 'args': ['sh', '-c', 'cat > $b/out/poststop']}]}"
R create --bundle "$b" c5; check "create with hooks" 0 $?
contains "createRuntime gets the state" '"id":"c5"' "$(cat "$b/out/create-runtime")"
contains "createRuntime's status" '"status":"created"' "$(cat "$b/out/create-runtime")"
check "createContainer runs inside" box "$(cat "$b/out/create-container")"
R start c5
check "startContainer runs inside, its env" start "$(cat "$b/out/start-container")"
contains "poststart" '"status":"running"' "$(cat "$b/out/poststart")"
R delete -f c5
contains "poststop" '"status":"stopped"' "$(cat "$b/out/poststop")"

b=$scratch/b5
bundle "$b" '["sleep", "60"]' "d['hooks'] = {'createRuntime': [{'path': '/bin/false'}]}"
R create --bundle "$b" c6 2>"$b/err"; check "a failing hook fails create" 1 $?
contains "names the hook" "/bin/false" "$(cat "$b/err")"
check "and leaves no state" no "$([ -e "$root/c6" ] && echo yes || echo no)"
bundle "$b" '["sleep", "60"]' "d['hooks'] = {'createRuntime': [{'path': '/bin/sleep', 'args': ['sleep', '10'], 'timeout': 1}]}"
R create --bundle "$b" c6 2>"$b/err"; check "a hook's timeout" 1 $?
contains "says it timed out" "timed out" "$(cat "$b/err")"

# ---- a terminal through --console-socket ------------------------------------------------
b=$scratch/b6
bundle "$b" '["sh", "-c", "test -t 0 && test -t 1 && echo on a terminal; sleep 1"]' 'd["process"]["terminal"] = True'
python3 - "$b/console.sock" "$b/console.out" <<'EOF' &
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1)
c, _ = s.accept()
fds = array.array("i")
msg, anc, _, _ = c.recvmsg(64, socket.CMSG_LEN(fds.itemsize))
fds.frombytes(anc[0][2][:fds.itemsize])
out = b""
while True:
    try:
        data = os.read(fds[0], 4096)
    except OSError:
        break
    if not data:
        break
    out += data
open(sys.argv[2], "wb").write(msg + b"|" + out)
EOF
receiver=$!
for _ in $(seq 50); do [ -S "$b/console.sock" ] && break; sleep 0.05; done
R create --bundle "$b" --console-socket "$b/console.sock" c7; check "create with a terminal" 0 $?
R start c7
wait $receiver
contains "the master reached the engine" "on a terminal" "$(cat "$b/console.out")"
contains "with its name" "/dev/pts/" "$(cat "$b/console.out")"
R delete -f c7
R create --bundle "$b" c8 2>/dev/null; check "a terminal needs a socket" 1 $?

# ---- refusals ---------------------------------------------------------------------------
R create --bundle "$scratch/b1" ../x 2>/dev/null; check "bad id" 1 $?
R create --bundle "$scratch/none" c9 2>"$scratch/err"; check "no bundle" 1 $?
contains "names config.json" "config.json" "$(cat "$scratch/err")"
check "no state left" no "$([ -e "$root/c9" ] && echo yes || echo no)"
R --systemd-cgroup create --bundle "$scratch/b1" c9 2>/dev/null; check "systemd cgroups refused" 1 $?
R create --bundle "$scratch/b1" c10 && R create --bundle "$scratch/b1" c10 2>"$scratch/err"
check "an id in use" 1 $?
contains "says it exists" "exists" "$(cat "$scratch/err")"
R delete c10
R bogus 2>/dev/null; check "unknown command" 1 $?
R create --bogus 2>/dev/null; check "unknown flag" 1 $?
R --log "$scratch/log.json" --log-format json start nothing 2>/dev/null
check "errors go to the log as JSON" error "$(json 'd["level"]' <"$scratch/log.json")"
check "features" 1.2.0 "$("$rt" features | json 'd["ociVersionMax"]')"
contains "version" "spec: 1.2.0" "$("$rt" --version)"
check "nothing left" "" "$(R list -q)"

report hutch-runtime
