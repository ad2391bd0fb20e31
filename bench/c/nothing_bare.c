/* nothing_bare: exits at once without the C library (Linux on x86-64). Beside
 * `nothing`, it shows what the C library's start-up costs each process: under a
 * hypervisor its CPUID instructions trap (see qremote/client/freestanding.h). */
__asm__(".text\n"
        ".global _start\n"
        "_start:\n"
        "	mov $231, %eax\n" /* exit_group(0) */
        "	xor %edi, %edi\n"
        "	syscall\n");
