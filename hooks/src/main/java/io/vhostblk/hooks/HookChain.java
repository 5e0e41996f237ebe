package io.vhostblk.hooks;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A device's modules in the order requests pass them (first = nearest the guest). Immutable: a
 * device changes its chain by swapping in a new one, so requests in flight finish on the chain
 * they started on.
 */
public final class HookChain {
    private final List<ChainEntry> entries;

    public HookChain(List<ChainEntry> entries) {
        this.entries = List.copyOf(entries);
        for (int i = 0; i < this.entries.size(); i++) {
            for (int j = i + 1; j < this.entries.size(); j++) {
                if (this.entries.get(i).name().equals(this.entries.get(j).name())) {
                    throw new IllegalArgumentException("module " + this.entries.get(i).name() + " appears twice in a chain");
                }
            }
        }
    }

    public static HookChain empty() {
        return new HookChain(List.of());
    }

    public List<ChainEntry> entries() {
        return entries;
    }

    public int size() {
        return entries.size();
    }

    public Optional<ChainEntry> find(String name) {
        return entries.stream().filter(e -> e.name().equals(name)).findFirst();
    }

    /** This chain with {@code entry} inserted at {@code position} (clamped; -1 = last). */
    public HookChain with(ChainEntry entry, int position) {
        List<ChainEntry> l = new ArrayList<>(entries);
        l.removeIf(e -> e.name().equals(entry.name()));
        int at = position < 0 || position > l.size() ? l.size() : position;
        l.add(at, entry);
        return new HookChain(l);
    }

    /** This chain without the module called {@code name}. */
    public HookChain without(String name) {
        List<ChainEntry> l = new ArrayList<>(entries);
        l.removeIf(e -> e.name().equals(name));
        return new HookChain(l);
    }

    /** This chain with module {@code name} moved to {@code position}. */
    public HookChain moved(String name, int position) {
        ChainEntry e = find(name).orElseThrow(() -> new IllegalArgumentException("module " + name + " is not in the chain"));
        return without(name).with(e, position);
    }

    public List<String> names() {
        return entries.stream().map(ChainEntry::name).toList();
    }
}
