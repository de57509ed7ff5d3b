# The architecture registry, for the Makefile and tests/cudasim/cudasim.mk: one
# SLIM_ARCH(NAME) per `const slim_arch slim_arch_NAME = {` line in this folder's
# files (lib/model/arch.h), in file order, into $(BUILD)/gen/model/arch_list.inc,
# which lib/model/tensors.c expands (compile it with -I$(BUILD)/gen).  Remade on
# every run but rewritten only when the list changes, so a new or removed file
# rebuilds tensors.c's objects and nothing else.
ifndef ARCH_LIST
ARCH_LIST := $(BUILD)/gen/model/arch_list.inc
$(ARCH_LIST): FORCE
	@mkdir -p $(@D)
	@sed -n 's/^const slim_arch slim_arch_\([a-z0-9_]*\) = {$$/SLIM_ARCH(\1)/p' \
	    $(sort $(wildcard lib/model/arch/*.c)) > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
.PHONY: FORCE
FORCE:
endif
