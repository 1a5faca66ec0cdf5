"""rawqemu.py — noid's own QEMU command line, turned into one a person would
run by hand (the baselines of the benchmarks): QEMU's default disk options,
no -runas, the log and paths in the raw copy's directory, optionally
ordinary RAM or another RAM file."""


def raw_argv(argv, src, dst, keep_ram_file=True, ram_path=None):
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else ""
        if a == "-runas":
            i += 2
            continue
        if a == "-drive":
            out += ["-drive", f"id=root,file={dst}/rootfs.ext4,format=raw,if=none,"
                              "cache=writeback,discard=unmap"]
            i += 2
            continue
        if a == "-D":
            out += ["-D", f"{dst}/vmm.log"]
            i += 2
            continue
        if a == "-object" and nxt.startswith("memory-backend"):
            if not keep_ram_file:
                i += 2  # ordinary RAM instead
                continue
            if ram_path:
                nxt = ",".join(f"mem-path={ram_path}" if p.startswith("mem-path=") else p
                               for p in nxt.split(","))
            out += [a, nxt.replace(src, dst)]
            i += 2
            continue
        if a.startswith("microvm") and not keep_ram_file:
            a = a.replace(",memory-backend=mem", "")
        out.append(a.replace(src, dst))
        i += 1
    return out
