#!/usr/bin/env python3
"""Write a copy of a GGUF model with every quantized tensor dequantized to F16.

    tools/dequant_gguf.py IN.gguf OUT.gguf

Metadata is copied as it is (general.file_type set to MOSTLY_F16); 1-D
tensors stay F32.  The CUDA emulator test uses the result (Gemma 3 270M at
F16, `make model-f16`): with float weights no activation is quantized to 8
bits, so the CUDA and CPU backends differ only by float summation order, and
their top-1 tokens can be compared position by position.
"""
import sys

import numpy as np
import gguf


def copy_metadata(reader, writer):
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == gguf.Keys.General.ARCHITECTURE:
            continue
        if field.name == gguf.Keys.General.FILE_TYPE:
            writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    reader = gguf.GGUFReader(src)
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(dst, arch)
    copy_metadata(reader, writer)
    for t in reader.tensors:
        qtype = gguf.GGMLQuantizationType(t.tensor_type)
        # GGUF lists dims innermost first; numpy wants them outermost first.
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))
        data = gguf.quants.dequantize(t.data, qtype).reshape(shape)
        if len(shape) > 1:
            data = data.astype(np.float16)
        else:
            data = data.astype(np.float32)
        writer.add_tensor(t.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
