/*
 * Fake of zephyr/sys/iterable_sections.h (include/zephyr/sys/iterable_sections.h, Zephyr 4.x as
 * pinned by NCS v3.4.1). Upstream STRUCT_SECTION_ITERABLE places the object in a
 * linker section that the owner iterates; here it is a plain global so tests can find it by name.
 */

#ifndef FAKE_ZEPHYR_SYS_ITERABLE_SECTIONS_H_
#define FAKE_ZEPHYR_SYS_ITERABLE_SECTIONS_H_

#define STRUCT_SECTION_ITERABLE(struct_type, varname) struct struct_type varname

#endif /* FAKE_ZEPHYR_SYS_ITERABLE_SECTIONS_H_ */
