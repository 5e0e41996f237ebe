package io.vhostblk.virtio;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Decodes a walked {@link DescriptorChain} into a {@link BlkRequest}, checking header and status
 * placement and the data direction and length for the request type. Stateless and
 * allocation-free.
 *
 * <p>Outcomes, in the order they are checked:
 * <ol>
 * <li>no device-writable byte (the status is the chain's last writable byte) → {@code NO_STATUS}:
 *     nothing can be reported, the caller pushes a used entry of length 0 and logs;</li>
 * <li>fewer than 16 readable bytes (the header may be spread over several descriptors: it is
 *     gathered) → {@code IOERR};</li>
 * <li>unknown type, or DISCARD / WRITE_ZEROES / SECURE_ERASE / GET_LIFETIME whose feature bit was
 *     not negotiated → {@code UNSUPP};</li>
 * <li>data in the wrong direction for the type (readable bytes after the header of IN, GET_ID,
 *     GET_LIFETIME or FLUSH; writable bytes before the status of OUT, FLUSH or the segment types)
 *     → {@code IOERR};</li>
 * <li>IN / OUT data not a multiple of 512 bytes, segment-type data empty or not a multiple of 16,
 *     GET_LIFETIME buffer shorter than 6 bytes → {@code IOERR};</li>
 * <li>otherwise {@code OK}.</li>
 * </ol>
 * Not checked here, by design: sector range against capacity (see
 * {@link VirtioBlk#withinCapacity}), writes to a read-only device, segment contents and counts
 * against the config limits — those are the caller's policy.
 */
public final class BlkRequestDecoder {
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** {@link #decode} result for a request without a status byte (see {@link BlkRequest.Outcome#NO_STATUS}). */
    public static final int NO_STATUS = -1;

    /** Every optional request type admitted: the caller gates on its own feature set. */
    private static final long ALL_TYPES = VirtioBlk.bit(VirtioBlk.F_DISCARD) | VirtioBlk.bit(VirtioBlk.F_WRITE_ZEROES)
            | VirtioBlk.bit(VirtioBlk.F_SECURE_ERASE) | VirtioBlk.bit(VirtioBlk.F_LIFETIME);

    private BlkRequestDecoder() {
    }

    /**
     * Decodes chain into req (which keeps a reference to chain), admitting every known type.
     * Returns the status to report ({@link VirtioBlk#S_OK} = serve it, {@link VirtioBlk#S_IOERR},
     * {@link VirtioBlk#S_UNSUPP}) or {@link #NO_STATUS}; {@link BlkRequest#outcome()} says the same as an enum.
     */
    public static int decode(DescriptorChain chain, BlkRequest req) {
        return decode(chain, req, ALL_TYPES);
    }

    /** As {@link #decode(DescriptorChain, BlkRequest)}, answering UNSUPP for optional types not in negotiatedFeatures. */
    public static int decode(DescriptorChain chain, BlkRequest req, long negotiatedFeatures) {
        return switch (decodeOutcome(chain, req, negotiatedFeatures)) {
            case OK -> VirtioBlk.S_OK;
            case IOERR -> VirtioBlk.S_IOERR;
            case UNSUPP -> VirtioBlk.S_UNSUPP;
            case NO_STATUS -> NO_STATUS;
        };
    }

    private static boolean has(long features, int bit) {
        return (features & (1L << bit)) != 0;
    }

    private static BlkRequest.Outcome decodeOutcome(DescriptorChain chain, BlkRequest req, long features) {
        req.reset(chain);
        if (chain.writableCount() == 0) {
            return req.fail(BlkRequest.Outcome.NO_STATUS, "no device-writable byte for the status");
        }
        int last = chain.segmentCount() - 1; // writable, and non-empty: the walker drops zero-length buffers
        req.status(chain.regionSegment(last), chain.regionOffset(last) + chain.length(last) - 1);

        if (chain.readableBytes() < VirtioBlk.HEADER_BYTES) {
            return req.fail(BlkRequest.Outcome.IOERR, "header shorter than 16 bytes");
        }
        MemorySegment h = req.scratch();
        chain.copyFromReadable(0, h, 0, VirtioBlk.HEADER_BYTES);
        int type = h.get(U32, 0);
        req.header(type, h.get(U32, 4), h.get(U64, 8));

        long readData = chain.readableBytes() - VirtioBlk.HEADER_BYTES;
        long writeData = chain.writableBytes() - 1;
        return switch (type) {
            case VirtioBlk.T_IN -> {
                if (readData != 0) {
                    yield req.fail(BlkRequest.Outcome.IOERR, "IN request has readable data after the header");
                }
                yield sectorData(req, true, 0, writeData);
            }
            case VirtioBlk.T_OUT -> {
                if (writeData != 0) {
                    yield req.fail(BlkRequest.Outcome.IOERR, "OUT request has writable data before the status");
                }
                yield sectorData(req, false, VirtioBlk.HEADER_BYTES, readData);
            }
            case VirtioBlk.T_FLUSH -> {
                if (readData != 0 || writeData != 0) {
                    yield req.fail(BlkRequest.Outcome.IOERR, "FLUSH request carries data");
                }
                yield req.ok();
            }
            case VirtioBlk.T_GET_ID -> {
                if (readData != 0) {
                    yield req.fail(BlkRequest.Outcome.IOERR, "GET_ID request has readable data after the header");
                }
                yield data(req, true, 0, writeData);
            }
            case VirtioBlk.T_GET_LIFETIME -> {
                if (!has(features, VirtioBlk.F_LIFETIME)) {
                    yield req.fail(BlkRequest.Outcome.UNSUPP, "GET_LIFETIME without VIRTIO_BLK_F_LIFETIME");
                }
                if (readData != 0 || writeData < VirtioBlk.LIFETIME_BYTES) {
                    yield req.fail(BlkRequest.Outcome.IOERR, "GET_LIFETIME needs a 6-byte writable buffer and no readable data");
                }
                yield data(req, true, 0, writeData);
            }
            case VirtioBlk.T_DISCARD -> segments(req, has(features, VirtioBlk.F_DISCARD), readData, writeData,
                    "DISCARD without VIRTIO_BLK_F_DISCARD");
            case VirtioBlk.T_WRITE_ZEROES -> segments(req, has(features, VirtioBlk.F_WRITE_ZEROES), readData, writeData,
                    "WRITE_ZEROES without VIRTIO_BLK_F_WRITE_ZEROES");
            case VirtioBlk.T_SECURE_ERASE -> segments(req, has(features, VirtioBlk.F_SECURE_ERASE), readData, writeData,
                    "SECURE_ERASE without VIRTIO_BLK_F_SECURE_ERASE");
            default -> req.fail(BlkRequest.Outcome.UNSUPP, "unknown request type");
        };
    }

    private static BlkRequest.Outcome sectorData(BlkRequest req, boolean writable, long from, long len) {
        if ((len & (VirtioBlk.SECTOR_SIZE - 1)) != 0) {
            return req.fail(BlkRequest.Outcome.IOERR, "data length is not a multiple of 512 bytes");
        }
        return data(req, writable, from, len);
    }

    private static BlkRequest.Outcome segments(BlkRequest req, boolean negotiated, long readData, long writeData,
                                               String unsupported) {
        if (!negotiated) {
            return req.fail(BlkRequest.Outcome.UNSUPP, unsupported);
        }
        if (writeData != 0) {
            return req.fail(BlkRequest.Outcome.IOERR, "segment request has writable data before the status");
        }
        if (readData == 0 || readData % VirtioBlk.RANGE_SEGMENT_BYTES != 0) {
            return req.fail(BlkRequest.Outcome.IOERR, "segment data is empty or not a multiple of 16 bytes");
        }
        return data(req, false, VirtioBlk.HEADER_BYTES, readData);
    }

    private static BlkRequest.Outcome data(BlkRequest req, boolean writable, long from, long len) {
        if (!req.setData(writable, from, len)) {
            return req.fail(BlkRequest.Outcome.IOERR, "more data segments than the request's iovec array holds");
        }
        return req.ok();
    }
}
