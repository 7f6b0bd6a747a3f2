# Run by hello-busybox with the shell of the busybox resource (`busybox sh`): builtins only.
read -r message < /message/hello
echo "$message"
echo "(printed by the busybox shell of $NORTHSTAR_CONTAINER)"
