"""Stage 3, index: the cross-file index of KVM symbols and the common KVM layer."""
