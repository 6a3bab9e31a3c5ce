// The 82540EM's 64-word serial EEPROM (a 93C46-style Microwire part) and
// its contents: MAC address, IDs, init control words and the checksum word
// that makes the 64 words sum to 0xBABA (drivers refuse the NIC otherwise).
//
// Drivers reach it two ways: the EERD register (the NIC reads a word for
// them) and bit-banging EECD's SK/CS/DI/DO pins, which this class models
// as a Microwire slave: a start bit, a 2-bit opcode and a 6-bit address
// shifted in on SK rising edges (MSB first), then a dummy 0 and the 16 data
// bits shifted out on DO, continuing to the following words while clocked.
// Only READ is implemented; write/erase commands are accepted and ignored
// (the EEPROM is write-protected, as on a NIC whose image is locked).
#pragma once

#include <array>
#include <cstdint>

#include "xover/net/mac_address.hpp"

namespace xover::e1000 {

class Eeprom {
public:
    static constexpr unsigned kWords = 64;
    static constexpr unsigned kAddressBits = 6;
    static constexpr unsigned kChecksumWord = 0x3F;
    static constexpr std::uint16_t kChecksumSum = 0xBABA;
    static constexpr std::uint16_t kReadOpcode = 0b10;

    struct Ids {
        std::uint16_t vendor = 0x8086;
        std::uint16_t device = 0x100E;
        std::uint16_t subsystem_vendor = 0x8086;
        std::uint16_t subsystem = 0x001E;
    };

    Eeprom(const net::MacAddress& mac, const Ids& ids);

    std::uint16_t word(unsigned index) const { return index < kWords ? words_[index] : 0xFFFF; }
    const std::array<std::uint16_t, kWords>& words() const { return words_; }

    // Microwire pins as the driver drives them through EECD; returns DO.
    void drive(bool cs, bool sk, bool di);
    bool data_out() const { return data_out_; }
    // Back to idle (CS low, reset, or the driver releasing EE_REQ).
    void reset_interface();

private:
    enum class State { Idle, Command, Reading, Ignoring };

    std::array<std::uint16_t, kWords> words_{};
    State state_ = State::Idle;
    bool clock_ = false;
    bool data_out_ = false;
    unsigned bits_in_ = 0;
    std::uint32_t shift_ = 0;
    unsigned address_ = 0;
    unsigned bit_out_ = 0;
};

}  // namespace xover::e1000
