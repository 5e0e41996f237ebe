#!/bin/busybox sh
# /init of the vhost-blk test guest. Loads virtio-blk, runs the plan named by vbtest= on the kernel
# command line against /dev/vda, and reports on the serial console with lines the host parses:
#   VBTEST PASS <check> [detail]   VBTEST FAIL <check> <why>   VBTEST SYNCED <check>   VBTEST DONE
# then powers off. Plan lines are "<op> <check> <args...>" (see GuestPlan.java).

/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
exec </dev/console >/dev/console 2>&1

DEV=/dev/vda
SYS=/sys/block/vda
# util-linux tools (busybox's lack the options) with the libraries they were copied with.
UL="env LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/lib64"
BLKDISCARD="$UL /ul/blkdiscard"
FALLOCATE="$UL /ul/fallocate"

say() { echo "VBTEST $*"; }
pass() { say PASS "$@"; }
fail() {
    c=$1
    shift
    say FAIL "$c" "$(printf '%s' "$*" | tr '\r\n' '  ' | cut -c1-400)"
}
finish() {
    say DONE
    poweroff -f
    sleep 30
}
# run CMD...: runs CMD with its output captured in $OUT; returns CMD's status.
run() { OUT=$("$@" 2>&1); }
stat_field() { awk -v f="$1" '{ print $f }' $SYS/stat; }

# capacity CHECK BYTES
op_capacity() {
    got=$(($(cat $SYS/size) * 512))
    if [ "$got" = "$2" ]; then pass "$1"; else fail "$1" "capacity is $got bytes, expected $2"; fi
}

# sysfs CHECK ATTRIBUTE eq|gt VALUE
op_sysfs() {
    v=$(cat "$SYS/$2" 2>&1 | tr ' ' '_')
    case $3 in
    eq) [ "$v" = "$4" ] ;;
    gt) [ "$v" -gt "$4" ] 2>/dev/null ;;
    esac && pass "$1" "$2=$v" || fail "$1" "$SYS/$2 is '$v', expected $3 $4"
}

# write CHECK BS OFFSET LENGTH PATTERN_OFFSET (O_DIRECT)
op_write() {
    if run dd if=/pattern of=$DEV bs="$2" count=$(($4 / $2)) skip="$5" seek="$3" \
        iflag=skip_bytes oflag=direct,seek_bytes conv=notrunc; then
        pass "$1"
    else
        fail "$1" "dd write failed: $OUT"
    fi
}

# writezero CHECK BS OFFSET LENGTH (O_DIRECT, data from /dev/zero)
op_writezero() {
    if run dd if=/dev/zero of=$DEV bs="$2" count=$(($4 / $2)) seek="$3" oflag=direct,seek_bytes conv=notrunc; then
        pass "$1"
    else
        fail "$1" "dd write of zeros failed: $OUT"
    fi
}

# compare_with CHECK EXPECTED_FILE: compares /tmp/got with the expected bytes
compare_with() {
    if run cmp /tmp/got "$2"; then pass "$1"; else fail "$1" "data differs: $OUT"; fi
    rm -f /tmp/got /tmp/want
}

# read CHECK BS OFFSET LENGTH PATTERN_OFFSET (O_DIRECT, compared with the pattern)
op_read() {
    rm -f /tmp/got /tmp/want
    if ! run dd if=$DEV of=/tmp/got bs="$2" count=$(($4 / $2)) skip="$3" iflag=direct,skip_bytes; then
        fail "$1" "dd read failed: $OUT"
        return
    fi
    if ! run dd if=/pattern of=/tmp/want bs=65536 skip="$5" count="$4" iflag=skip_bytes,count_bytes; then
        fail "$1" "cannot cut the pattern: $OUT"
        return
    fi
    compare_with "$1" /tmp/want
}

# readzero CHECK BS OFFSET LENGTH (O_DIRECT, expects zeros)
op_readzero() {
    rm -f /tmp/got /tmp/want
    if ! run dd if=$DEV of=/tmp/got bs="$2" count=$(($4 / $2)) skip="$3" iflag=direct,skip_bytes; then
        fail "$1" "dd read failed: $OUT"
        return
    fi
    dd if=/dev/zero of=/tmp/want bs=65536 count="$4" iflag=count_bytes 2>/dev/null
    compare_with "$1" /tmp/want
}

# bgwrite CHECK CPU BS OFFSET LENGTH PATTERN_OFFSET: O_DIRECT writer pinned to CPU, collected by wait
op_bgwrite() {
    taskset -c "$2" dd if=/pattern of=$DEV bs="$3" count=$(($5 / $3)) skip="$6" seek="$4" \
        iflag=skip_bytes oflag=direct,seek_bytes conv=notrunc >"/tmp/bg-$1.log" 2>&1 &
    WRITERS="$WRITERS $!:$1"
}

# wait CHECK: waits for every background writer; each passes or fails under its own name
op_wait() {
    failed=0
    for w in $WRITERS; do
        wait "${w%%:*}"
        status=$?
        c=${w#*:}
        if [ $status = 0 ]; then pass "$c"; else fail "$c" "writer exited with $status: $(cat "/tmp/bg-$c.log")"; failed=1; fi
    done
    WRITERS=
    if [ $failed = 0 ]; then pass "$1"; else fail "$1" "a parallel writer failed"; fi
}

# mqueues CHECK COUNT
op_mqueues() {
    n=$(ls $SYS/mq | wc -l)
    if [ "$n" = "$2" ]; then pass "$1"; else fail "$1" "$SYS/mq has $n queues ($(ls $SYS/mq | tr '\n' ' ')), expected $2"; fi
}

# queueirqs CHECK COUNT: every virtqueue completed requests, i.e. its MSI-X vector ("virtioN-req.I"
# in /proc/interrupts) fired; the back-end signals each queue's call eventfd separately.
op_queueirqs() {
    i=0
    report=
    ok=1
    while [ $i -lt "$2" ]; do
        n=$(awk -v q="-req.$i" 'substr($NF, length($NF) - length(q) + 1) == q {
                for (c = 2; c <= NF && $c ~ /^[0-9]+$/; c++) s += $c; found = 1 }
            END { print found ? s + 0 : "none" }' /proc/interrupts)
        report="$report req.$i=$n"
        [ "$n" -gt 0 ] 2>/dev/null || ok=0
        i=$((i + 1))
    done
    if [ $ok = 1 ]; then pass "$1" "interrupts:$report"; else fail "$1" "not every queue completed requests:$report; $(grep virtio /proc/interrupts | tr -s ' ')"; fi
}

# writeback CHECK: the device must run with a volatile write cache, or the kernel never sends FLUSH.
# With VIRTIO_BLK_F_CONFIG_WCE the guest may switch the mode itself (a config-space write the back-end
# must honour); without it, VIRTIO_BLK_F_FLUSH alone means write back.
op_writeback() {
    how="offered"
    if [ "$(cat $SYS/queue/write_cache)" != "write back" ] && [ -w $SYS/cache_type ]; then
        echo "write back" >$SYS/cache_type 2>/dev/null
        how="switched through cache_type (VIRTIO_BLK_F_CONFIG_WCE)"
    fi
    mode=$(cat $SYS/queue/write_cache)
    if [ "$mode" = "write back" ]; then pass "$1" "$how"; else fail "$1" "write cache is '$mode' (cache_type '$(cat $SYS/cache_type 2>&1)'): the device offers no FLUSH"; fi
}

# cachemode CHECK back|through: switches the guest's cache mode through cache_type (a config-space
# write under VIRTIO_BLK_F_CONFIG_WCE that the back-end must honour) and checks it took.
op_cachemode() {
    echo "write $2" >$SYS/cache_type 2>/dev/null
    mode=$(cat $SYS/queue/write_cache)
    if [ "$mode" = "write $2" ]; then pass "$1"; else fail "$1" "write cache is '$mode' after asking for 'write $2'"; fi
}

# syncloop CHECK COUNT OFFSET: COUNT buffered 4 KiB writes from OFFSET on, each followed by fsync
# (fio --fsync=1 on the raw device). In write-back mode every fsync must send a FLUSH, in
# write-through mode none; passes with the counts and the elapsed time (10 ms resolution).
op_syncloop() {
    mode=$(tr ' ' _ <$SYS/queue/write_cache)
    f0=$(stat_field 16)
    w0=$(stat_field 5)
    t0=$(cut -d' ' -f1 /proc/uptime)
    i=0
    while [ $i -lt "$2" ]; do
        if ! run dd if=/pattern of=$DEV bs=4096 count=1 seek=$(($3 / 4096 + i)) conv=notrunc,fsync; then
            fail "$1" "write+fsync number $i failed: $OUT"
            return
        fi
        i=$((i + 1))
    done
    t1=$(cut -d' ' -f1 /proc/uptime)
    flushes=$(($(stat_field 16) - f0))
    writes=$(($(stat_field 5) - w0))
    ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", (b - a) * 1000 }')
    detail="mode=$mode pairs=$2 writes=$writes flushes=$flushes ms=$ms"
    case $mode in
    write_back) [ "$flushes" -ge "$2" ] ;;
    *) [ "$flushes" -eq 0 ] ;;
    esac && pass "$1" "$detail" || fail "$1" "$detail: expected a FLUSH per fsync in write-back mode and none in write-through mode"
}

# discard CHECK OFFSET LENGTH
op_discard() {
    before=$(stat_field 12)
    if ! run $BLKDISCARD -f -o "$2" -l "$3" $DEV; then
        fail "$1" "blkdiscard failed: $OUT"
        return
    fi
    after=$(stat_field 12)
    if [ "$after" -gt "$before" ]; then pass "$1"; else fail "$1" "no DISCARD reached the device (discards $before -> $after)"; fi
}

# zeroout CHECK OFFSET LENGTH
op_zeroout() {
    if run $BLKDISCARD -f -z -o "$2" -l "$3" $DEV; then pass "$1"; else fail "$1" "blkdiscard -z failed: $OUT"; fi
}

# punch CHECK OFFSET LENGTH: fallocate --punch-hole on the device, i.e. WRITE_ZEROES (unmap allowed)
# that must be carried out by the device: the kernel does not fall back to writing zero pages.
op_punch() {
    if run $FALLOCATE -p -o "$2" -l "$3" $DEV; then pass "$1"; else fail "$1" "fallocate --punch-hole failed: $OUT"; fi
}

# flush CHECK BS OFFSET LENGTH PATTERN_OFFSET: buffered write, fsync, then the host checks the image
op_flush() {
    before=$(stat_field 16)
    if ! run dd if=/pattern of=$DEV bs="$2" count=$(($4 / $2)) skip="$5" seek="$3" \
        iflag=skip_bytes oflag=seek_bytes conv=notrunc,fsync; then
        fail "$1" "buffered write + fsync failed: $OUT"
        return
    fi
    after=$(stat_field 16)
    if [ "$after" -le "$before" ]; then
        fail "$1" "no FLUSH reached the device (flushes $before -> $after, write_cache '$(cat $SYS/queue/write_cache)')"
        return
    fi
    say SYNCED "$1"
    # The host answers once it has compared the image file with what was just flushed.
    if read -t 60 reply </dev/console; then pass "$1" "flushes $before -> $after"; else fail "$1" "the host did not answer within 60 s"; fi
}

# genloop CHECK BLOCKS GENERATIONS: each generation writes every 4 KiB block with "%07d:%07d\n"
# (block, generation) repeated, by 4 O_DIRECT writers in parallel (so requests overlap and may
# complete out of order), fsyncs, reads every block back and compares, then has the host check the
# image (SYNCED gen-G). SYNCED go-G tells the host the generation's I/O starts. Runs while the host restarts the back-end under it: any I/O error, here or
# in the kernel log, fails the check.
op_genloop() {
    share=$(($2 / 4))
    g=1
    while [ $g -le "$3" ]; do
        awk -v n="$2" -v g=$g 'BEGIN { for (b = 0; b < n; b++) { r = sprintf("%07d:%07d\n", b, g); for (i = 0; i < 256; i++) printf "%s", r } }' >/tmp/gen
        # The host may take the back-end down at any moment from here on.
        say SYNCED "go-$g"
        if ! read -t 120 reply </dev/console; then
            fail "$1" "generation $g: the host did not answer within 120 s"
            return
        fi
        pids=
        k=0
        while [ $k -lt 4 ]; do
            dd if=/tmp/gen of=$DEV bs=4096 skip=$((k * share)) seek=$((k * share)) count=$share \
                oflag=direct conv=notrunc >/tmp/w$k.log 2>&1 &
            pids="$pids $!"
            k=$((k + 1))
        done
        k=0
        for p in $pids; do
            if ! wait "$p"; then
                fail "$1" "generation $g: writer $k failed: $(cat /tmp/w$k.log)"
                return
            fi
            k=$((k + 1))
        done
        if ! run sync -d $DEV; then
            fail "$1" "generation $g: fsync failed: $OUT"
            return
        fi
        if ! run dd if=$DEV of=/tmp/got bs=4096 count="$2" iflag=direct; then
            fail "$1" "generation $g: read back failed: $OUT"
            return
        fi
        if ! run cmp /tmp/got /tmp/gen; then
            fail "$1" "generation $g: data reads back wrong: $OUT"
            return
        fi
        say SYNCED "gen-$g"
        if ! read -t 120 reply </dev/console; then
            fail "$1" "generation $g: the host did not answer within 120 s"
            return
        fi
        g=$((g + 1))
    done
    errors=$(dmesg | grep -iE "I/O error|blk_update_request|print_req_error" | tail -n 3)
    if [ -n "$errors" ]; then fail "$1" "kernel log reports I/O errors: $errors"; else pass "$1" "$3 generations of $2 blocks, no I/O error"; fi
}

# migwrite CHECK BLOCKS FINAL READ_AT: four O_DIRECT writers rewrite their quarter of the 4 KiB blocks with
# "%07d:%07d\n" (block, generation), generation after generation, while the host migrates the guest
# (SYNCED migrate, answered from the destination once the migration completed). Then the writers stop;
# each one's blocks must hold its last completed generation; a final generation FINAL is written to
# every block, fsynced and read back. Meanwhile two readers check the prefilled MiB at READ_AT.
gen_blocks() { # FIRST COUNT GENERATION > file
    awk -v s="$1" -v n="$2" -v g="$3" 'BEGIN { for (b = s; b < s + n; b++) { r = sprintf("%07d:%07d\n", b, g); for (i = 0; i < 256; i++) printf "%s", r } }'
}
op_migwrite() {
    share=$(($2 / 4))
    rm -f /tmp/stop /tmp/last*
    pids=
    k=0
    while [ $k -lt 4 ]; do
        (
            g=1
            while [ ! -e /tmp/stop ]; do
                gen_blocks $((k * share)) $share $g >/tmp/m$k
                dd if=/tmp/m$k of=$DEV bs=4096 seek=$((k * share)) count=$share oflag=direct conv=notrunc 2>/tmp/w$k.log || exit 1
                echo $g >/tmp/last$k
                g=$((g + 1))
            done
        ) &
        pids="$pids $!"
        k=$((k + 1))
    done
    # Two readers verify the host's prefill (READ_AT.. +1 MiB, pattern from 0) in alternating halves, so
    # a read buffer the device filled but the migration did not carry over would hold the other half.
    half=524288
    dd if=/pattern of=/tmp/want0 bs=65536 count=8 2>/dev/null
    dd if=/pattern of=/tmp/want1 bs=65536 skip=8 count=8 2>/dev/null
    rpids=
    j=0
    while [ $j -lt 2 ]; do
        (
            i=$j
            while [ ! -e /tmp/stop ]; do
                h=$((i % 2))
                dd if=$DEV of=/tmp/r$j bs=65536 count=8 skip=$(($4 + h * half)) iflag=direct,skip_bytes 2>/tmp/rlog$j || exit 1
                cmp /tmp/r$j /tmp/want$h >/tmp/rlog$j 2>&1 || exit 2
                i=$((i + 1))
            done
        ) &
        rpids="$rpids $!"
        j=$((j + 1))
    done
    say SYNCED migrate
    if ! read -t 600 reply </dev/console; then
        touch /tmp/stop
        fail "$1" "the host did not answer within 600 s"
        return
    fi
    touch /tmp/stop
    k=0
    for p in $pids; do
        if ! wait "$p"; then fail "$1" "writer $k failed: $(cat /tmp/w$k.log)"; return; fi
        k=$((k + 1))
    done
    j=0
    for p in $rpids; do
        wait "$p"
        st=$?
        if [ $st != 0 ]; then fail "$1" "reader $j failed (status $st): $(cat /tmp/rlog$j)"; return; fi
        j=$((j + 1))
    done
    reached=
    k=0
    while [ $k -lt 4 ]; do
        if [ -f /tmp/last$k ]; then
            g=$(cat /tmp/last$k)
            reached="$reached $g"
            gen_blocks $((k * share)) $share $g >/tmp/want
            if ! run dd if=$DEV of=/tmp/got bs=4096 skip=$((k * share)) count=$share iflag=direct; then
                fail "$1" "read back of writer $k's blocks failed: $OUT"
                return
            fi
            if ! run cmp /tmp/got /tmp/want; then
                fail "$1" "writer $k's blocks do not hold its last generation $g: $OUT: $(head -c 16 /tmp/got)"
                return
            fi
        fi
        k=$((k + 1))
    done
    gen_blocks 0 "$2" "$3" >/tmp/want
    if ! run dd if=/tmp/want of=$DEV bs=4096 count="$2" oflag=direct conv=notrunc; then fail "$1" "final write failed: $OUT"; return; fi
    if ! run sync -d $DEV; then fail "$1" "fsync failed: $OUT"; return; fi
    if ! run dd if=$DEV of=/tmp/got bs=4096 count="$2" iflag=direct; then fail "$1" "final read failed: $OUT"; return; fi
    if ! run cmp /tmp/got /tmp/want; then fail "$1" "final generation reads back wrong: $OUT"; return; fi
    errors=$(dmesg | grep -iE "I/O error|blk_update_request|print_req_error" | tail -n 3)
    if [ -n "$errors" ]; then fail "$1" "kernel log reports I/O errors: $errors"; else pass "$1" "writers reached generations$reached"; fi
}

# fsync CHECK
op_fsync() {
    before=$(stat_field 16)
    if ! run sync -d $DEV; then
        fail "$1" "fsync failed: $OUT"
        return
    fi
    after=$(stat_field 16)
    if [ "$after" -gt "$before" ]; then pass "$1"; else fail "$1" "no FLUSH reached the device (flushes $before -> $after)"; fi
}

# refused CHECK WHAT [EXTRA_REASON]: the last command must have failed because the device is
# read-only (or for EXTRA_REASON), not for some unrelated error
refused() {
    if printf '%s' "$OUT" | grep -Eq "Read-only|not permitted|Permission denied${3:+|$3}"; then
        pass "$1" "$(printf '%s' "$OUT" | tr '\n' ' ')"
    else
        fail "$1" "$2 failed, but not because the device is read-only: $OUT"
    fi
}

# writefails CHECK OFFSET LENGTH
op_writefails() {
    if run dd if=/pattern of=$DEV bs="$3" count=1 seek="$2" oflag=direct,seek_bytes conv=notrunc; then
        fail "$1" "a write to the read-only device succeeded"
    else
        refused "$1" "the write"
    fi
}

# iofails CHECK read|write OFFSET LENGTH: one O_DIRECT transfer the device must fail with an I/O error
op_iofails() {
    if [ "$2" = read ]; then
        run dd if=$DEV of=/dev/null bs="$4" count=1 skip="$3" iflag=direct,skip_bytes
    else
        run dd if=/pattern of=$DEV bs="$4" count=1 seek="$3" oflag=direct,seek_bytes conv=notrunc
    fi
    st=$?
    if [ $st = 0 ]; then
        fail "$1" "the $2 of $4 bytes at $3 succeeded"
    elif printf '%s' "$OUT" | grep -q "Input/output error"; then
        pass "$1" "$(printf '%s' "$OUT" | head -n 1)"
    else
        fail "$1" "the $2 failed, but not with an I/O error: $OUT"
    fi
}

# discardfails CHECK OFFSET LENGTH
op_discardfails() {
    if run $BLKDISCARD -f -o "$2" -l "$3" $DEV; then
        fail "$1" "a discard on the read-only device succeeded"
    else
        # A read-only device may not offer discard at all.
        refused "$1" "the discard" "not supported"
    fi
}

# host_step CHECK: SYNCED CHECK, then waits (bounded) for the host to do its part and answer.
host_step() {
    say SYNCED "$1"
    read -t 120 reply </dev/console
}

# hostresize CHECK BYTES: the host resizes the disk through the control socket; the back-end tells
# QEMU (CONFIG_CHANGE_MSG), QEMU the guest (config interrupt); the new size must show in sysfs.
op_hostresize() {
    if ! host_step "$1"; then fail "$1" "the host did not answer within 120 s"; return; fi
    want=$(($2 / 512))
    i=0
    while [ "$(cat $SYS/size)" != "$want" ] && [ $i -lt 60 ]; do
        sleep 1
        i=$((i + 1))
    done
    got=$(cat $SYS/size)
    if [ "$got" = "$want" ]; then
        pass "$1" "size $got sectors; $(dmesg | grep -i 'vda.*capacity change' | tail -n 1)"
    else
        fail "$1" "$SYS/size is $got sectors 60 s after the resize, expected $want"
    fi
}

# memhotplug CHECK: the host plugs a DIMM through QEMU's monitor; the new memory blocks are onlined
# as movable, so user-space buffers allocated from now on come from the new memory first.
op_memhotplug() {
    before=$(ls -d /sys/devices/system/memory/memory* | wc -l)
    if ! host_step "$1"; then fail "$1" "the host did not answer within 120 s"; return; fi
    i=0
    while [ "$(ls -d /sys/devices/system/memory/memory* | wc -l)" -le "$before" ] && [ $i -lt 60 ]; do
        sleep 1
        i=$((i + 1))
    done
    onlined=0
    for m in /sys/devices/system/memory/memory*; do
        if [ "$(cat "$m/state")" = offline ]; then
            if echo online_movable >"$m/state"; then onlined=$((onlined + 1)); else fail "$1" "cannot online $m"; return; fi
        fi
    done
    if [ $onlined -gt 0 ]; then
        pass "$1" "$onlined blocks onlined; $(grep MemTotal /proc/meminfo | tr -s ' ')"
    else
        fail "$1" "no new memory block appeared ($before before)"
    fi
}

# hotread CHECK OFFSET LENGTH: O_DIRECT reads into a fresh buffer (from the hotplugged memory),
# then the host looks for the data in that memory.
op_hotread() {
    if ! run dd if=$DEV of=/dev/null bs=1048576 count=$(($3 / 1048576)) skip="$2" iflag=direct,skip_bytes; then
        fail "$1" "dd read failed: $OUT"
        return
    fi
    if host_step "$1"; then pass "$1"; else fail "$1" "the host did not answer within 120 s"; fi
}

plan=$(sed -n 's/.*vbtest=\([a-z0-9-]*\).*/\1/p' /proc/cmdline)
if [ ! -f "/plans/$plan" ]; then
    fail plan "no plan '$plan' in /plans ($(ls /plans | tr '\n' ' '))"
    finish
fi
for m in /modules/*.ko; do
    [ -e "$m" ] || continue
    if ! run insmod "$m"; then
        fail device "insmod $m: $OUT"
        finish
    fi
done
i=0
while [ ! -b $DEV ] && [ $i -lt 200 ]; do
    usleep 50000
    i=$((i + 1))
done
if [ ! -b $DEV ]; then
    fail device "no $DEV after 10 s; block devices: $(ls /sys/block | tr '\n' ' '); $(dmesg | grep -i virtio | tail -n 5)"
    finish
fi
pass device "$(cat $SYS/size) sectors"

WRITERS=
while read -r op check args; do
    case $op in
    '' | '#'*) continue ;;
    esac
    # shellcheck disable=SC2086 # the arguments are split on purpose
    case $op in
    capacity | sysfs | write | writezero | read | readzero | bgwrite | wait | mqueues | queueirqs | writeback | cachemode | syncloop | discard | zeroout | punch | flush | genloop | migwrite | fsync | writefails | iofails | discardfails | hostresize | memhotplug | hotread)
        "op_$op" "$check" $args ;;
    *) fail "$check" "unknown plan operation '$op'" ;;
    esac
done <"/plans/$plan"
finish
