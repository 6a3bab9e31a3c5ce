/* Constants shared by the assembly boot code and the C kernel. */
#ifndef GUEST_LAYOUT_H
#define GUEST_LAYOUT_H

/* GDT selectors (see boot.S). User selectors carry RPL 3. */
#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UDATA 0x1b
#define SEL_UCODE 0x23
#define SEL_TSS   0x28

#define KSTACK_SIZE (16 * 1024)  /* CPL0: interrupts, faults, port I/O emulation */
#define USTACK_SIZE (64 * 1024)  /* CPL3: main() */
#define FAULT_STACK_SIZE (4 * 1024) /* CPL0: #DF, NMI and #MC, through IST 1 */

#define VEC_SPURIOUS 0xff

#endif
