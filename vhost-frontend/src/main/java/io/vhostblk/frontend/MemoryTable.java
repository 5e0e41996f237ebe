package io.vhostblk.frontend;

import io.vhostblk.virtio.GuestMemory.RegionSpec;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The SET_MEM_TABLE payload: {nregions u32, padding u32} then one {guest address, size, user
 * address, mmap offset} (four u64) per region, one descriptor per region in the same order.
 */
public record MemoryTable(List<RegionSpec> regions) {
    public static final int HEADER_SIZE = 8;
    public static final int REGION_SIZE = 32;
    /** ADD_MEM_REG / REM_MEM_REG: padding, then one region. */
    public static final int SINGLE_SIZE = 8 + REGION_SIZE;

    public MemoryTable {
        regions = List.copyOf(regions);
    }

    /** Decodes and checks the table against the message's size and descriptor count. */
    public static MemoryTable decode(VhostUserMessage m) throws VhostUserException {
        if (m.payloadSize() < HEADER_SIZE) {
            throw new VhostUserException(m.name() + ": payload is " + m.payloadSize() + " bytes, shorter than the "
                    + HEADER_SIZE + "-byte table header");
        }
        ByteBuffer b = m.payload();
        int n = b.getInt();
        b.getInt();
        if (n < 1 || n > VhostUserRequest.MAX_MEM_REGIONS) {
            throw new VhostUserException(m.name() + ": nregions " + Integer.toUnsignedString(n) + " not in 1.."
                    + VhostUserRequest.MAX_MEM_REGIONS);
        }
        m.requirePayloadSize(HEADER_SIZE + n * REGION_SIZE);
        m.requireFds(n);
        List<RegionSpec> regions = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            regions.add(region(m, "region " + i, b));
        }
        return new MemoryTable(regions);
    }

    /**
     * Decodes the ADD_MEM_REG / REM_MEM_REG payload ({@code VhostUserMemRegMsg}: a u64 of padding,
     * then one region as in the table); descriptors are the caller's check.
     */
    public static RegionSpec decodeSingle(VhostUserMessage m) throws VhostUserException {
        m.requirePayloadSize(SINGLE_SIZE);
        ByteBuffer b = m.payload();
        b.getLong();
        return region(m, "region", b);
    }

    private static RegionSpec region(VhostUserMessage m, String what, ByteBuffer b) throws VhostUserException {
        RegionSpec r = new RegionSpec(b.getLong(), b.getLong(), b.getLong(), b.getLong());
        if (r.size() <= 0
                || Long.compareUnsigned(r.guestPhysAddr() + r.size(), r.guestPhysAddr()) < 0
                || Long.compareUnsigned(r.userAddr() + r.size(), r.userAddr()) < 0
                || r.mmapOffset() < 0 || r.mmapOffset() + r.size() < 0) {
            throw new VhostUserException(m.name() + ": " + what + " is invalid: " + describe(r));
        }
        return r;
    }

    /** The ADD_MEM_REG / REM_MEM_REG payload for {@code r}. */
    public static byte[] encodeSingle(RegionSpec r) {
        return VhostUserMessage.newPayload(SINGLE_SIZE).putLong(0).putLong(r.guestPhysAddr()).putLong(r.size())
                .putLong(r.userAddr()).putLong(r.mmapOffset()).array();
    }

    /** A region in hex, as the front-end's addresses are usually read. */
    public static String describe(RegionSpec r) {
        return String.format("guest 0x%x size 0x%x user 0x%x mmap offset 0x%x",
                r.guestPhysAddr(), r.size(), r.userAddr(), r.mmapOffset());
    }

    public byte[] encode() {
        ByteBuffer b = VhostUserMessage.newPayload(HEADER_SIZE + regions.size() * REGION_SIZE);
        b.putInt(regions.size()).putInt(0);
        for (RegionSpec r : regions) {
            b.putLong(r.guestPhysAddr()).putLong(r.size()).putLong(r.userAddr()).putLong(r.mmapOffset());
        }
        return b.array();
    }
}
