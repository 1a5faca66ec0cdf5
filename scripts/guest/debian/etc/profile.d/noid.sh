# noid guest defaults for login shells (the console).  Commands run through
# the agent get the same LANG from the agent itself.
export LANG=${LANG:-C.UTF-8}
# busybox init starts the console shell with TERM=linux; the serial console
# is usually a modern terminal emulator on the other end
[ "$TERM" = linux ] && export TERM=vt102
# the console's login shell is started by init (parent 1) in / with
# HOME=/, not by login(1): begin as a root login does, in /root
if [ "$PPID" = 1 ] && [ "$PWD" = / ]; then
    export HOME=/root
    cd /root
fi
