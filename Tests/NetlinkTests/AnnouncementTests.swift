// The frames the overlay sends to announce a newly programmed remote endpoint, byte for byte
// against frames built independently (Python's struct and ipaddress, RFC 826 / RFC 4861
// layouts; the ICMPv6 checksum from RFC 1071 over the pseudo-header).

import Base
import Testing
@testable import Netlink

@Suite struct Announcements {
    static func hex(_ b: [UInt8]) -> String { b.map(Self.format2).joined() }
    static func format2(_ x: UInt8) -> String {
        let d = Array("0123456789abcdef")
        return String([d[Int(x >> 4)], d[Int(x & 15)]])
    }

    let mac = MACAddress("02:42:ac:19:03:05")!

    @Test func gratuitousARP() {
        let f = Announcement.frame(ip: IPAddress("172.25.3.5")!, mac: mac)
        #expect(Self.hex(f) == "ffffffffffff0242ac190305080600010800060400020242ac190305ac190305ffffffffffffac190305")
    }

    @Test func unsolicitedNeighbourAdvertisement() {
        let f = Announcement.frame(ip: IPAddress("fd00:25::5")!, mac: mac)
        #expect(Self.hex(f) == "3333000000010242ac19030586dd6000000000203afffd000025000000000000000000000005"
            + "ff0200000000000000000000000000018800aae920000000fd00002500000000000000000000000502010242ac190305")
        // The checksum verifies: summing pseudo-header and message (checksum included) gives 0.
        let icmp = Array(f[54...])
        let ph = Announcement.pseudoHeader(src: Array(f[22..<38]), dst: Array(f[38..<54]), length: icmp.count)
        #expect(Announcement.checksum(ph + icmp) == 0)
    }

    @Test func checksumOddLengthAndCarry() {
        // RFC 1071's example: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2 (one's complement 0x220d).
        #expect(Announcement.checksum([0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]) == 0x220D)
        #expect(Announcement.checksum([0xFF]) == 0x00FF)
    }
}
