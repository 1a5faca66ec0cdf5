# noid guest defaults for login shells (the console).  Commands run through
# the agent get the same LANG from the agent itself.
export LANG=${LANG:-C.UTF-8}
# busybox init starts the console shell with TERM=linux; the serial console
# is usually a modern terminal emulator on the other end
[ "$TERM" = linux ] && export TERM=vt102
