#include "xover/e1000/eeprom.hpp"

namespace xover::e1000 {

namespace {
// Word offsets of the 8254x EEPROM map that drivers look at.
constexpr unsigned kMacWords = 0x00;            // 0x00-0x02: Ethernet address, low byte first
constexpr unsigned kLedSettings = 0x04;         // 0xFFFF: "use the default LED configuration"
constexpr unsigned kPbaNumber = 0x08;           // 0x08-0x09: printed board assembly number
constexpr unsigned kInitControl1 = 0x0A;
constexpr unsigned kSubsystemId = 0x0B;
constexpr unsigned kSubsystemVendorId = 0x0C;
constexpr unsigned kDeviceId = 0x0D;
constexpr unsigned kVendorId = 0x0E;
constexpr unsigned kInitControl2 = 0x0F;

// Init control word 1: signature 01b in bits 15:14 (the image is valid),
// load subsystem IDs (bit 0) and device ID (bit 1) from the words above.
constexpr std::uint16_t kInitControl1Value = 0x4000 | 0x0002 | 0x0001;
// Init control word 2: PAUSE and ASM_DIR capability (bits 13:12) so the
// driver advertises symmetric flow control.
constexpr std::uint16_t kInitControl2Value = 0x3000;
}  // namespace

Eeprom::Eeprom(const net::MacAddress& mac, const Ids& ids) {
    for (unsigned i = 0; i < 3; ++i)
        words_[kMacWords + i] = std::uint16_t(mac.bytes[2 * i] | mac.bytes[2 * i + 1] << 8);
    words_[kLedSettings] = 0xFFFF;
    words_[kPbaNumber] = 0x0000;
    words_[kPbaNumber + 1] = 0x0001;
    words_[kInitControl1] = kInitControl1Value;
    words_[kSubsystemId] = ids.subsystem;
    words_[kSubsystemVendorId] = ids.subsystem_vendor;
    words_[kDeviceId] = ids.device;
    words_[kVendorId] = ids.vendor;
    words_[kInitControl2] = kInitControl2Value;
    for (unsigned i = 0x10; i < kChecksumWord; ++i) words_[i] = 0xFFFF;  // erased cells

    std::uint16_t sum = 0;
    for (unsigned i = 0; i < kChecksumWord; ++i) sum = std::uint16_t(sum + words_[i]);
    words_[kChecksumWord] = std::uint16_t(kChecksumSum - sum);
}

void Eeprom::reset_interface() {
    state_ = State::Idle;
    clock_ = false;
    data_out_ = false;
    bits_in_ = 0;
    shift_ = 0;
}

void Eeprom::drive(bool cs, bool sk, bool di) {
    if (!cs) {
        // Deselecting ends any command; the part waits for a new start bit.
        reset_interface();
        return;
    }
    bool rising = sk && !clock_;
    clock_ = sk;
    if (!rising) return;

    switch (state_) {
    case State::Idle:
        // Leading zeros are ignored; a 1 is the start bit.
        if (di) {
            state_ = State::Command;
            bits_in_ = 0;
            shift_ = 0;
        }
        break;
    case State::Command:
        shift_ = (shift_ << 1) | (di ? 1u : 0u);
        if (++bits_in_ == 2 + kAddressBits) {
            unsigned opcode = shift_ >> kAddressBits;
            if (opcode == kReadOpcode) {
                address_ = shift_ & (kWords - 1);
                bit_out_ = 0;
                data_out_ = false;  // the dummy 0 that precedes the data
                state_ = State::Reading;
            } else {
                state_ = State::Ignoring;
            }
        }
        break;
    case State::Reading:
        data_out_ = (words_[address_] >> (15 - bit_out_)) & 1;
        if (++bit_out_ == 16) {
            bit_out_ = 0;
            address_ = (address_ + 1) % kWords;  // sequential read
        }
        break;
    case State::Ignoring:
        break;
    }
}

}  // namespace xover::e1000
