/* Everything a test kernel uses. */
#ifndef GUEST_GUEST_H
#define GUEST_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apic.h"
#include "cmdline.h"
#include "console.h"
#include "dma.h"
#include "kernel.h"
#include "mem.h"
#include "mmio.h"
#include "pci.h"
#include "pio.h"
#include "tsc.h"

#endif
