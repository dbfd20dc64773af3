/* msgpack_dump: prints every MessagePack object in a file, one per line, in a
 * small text notation, using only msgpack-c's C library (libmsgpackc). It is
 * the independent reader msgpack_serializer_test checks MsgpackSerializer's
 * bytes against. Exit status 1 when the file is not a sequence of complete
 * MessagePack objects.
 *
 * Notation: nil true false, integers in decimal, f32:<%.9g> f64:<%.17g>,
 * "str" (bytes outside printable ASCII as \xHH), bin:<hex>, [a,b], {k:v}. */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>

static void print_bytes(const char* p, uint32_t n) {
  for (uint32_t i = 0; i < n; ++i) {
    unsigned char c = (unsigned char)p[i];
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
      putchar(c);
    else
      printf("\\x%02x", c);
  }
}

static void print_object(msgpack_object o) {
  uint32_t i;
  switch (o.type) {
    case MSGPACK_OBJECT_NIL: printf("nil"); break;
    case MSGPACK_OBJECT_BOOLEAN: printf(o.via.boolean ? "true" : "false"); break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: printf("%llu", (unsigned long long)o.via.u64); break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: printf("%lld", (long long)o.via.i64); break;
    case MSGPACK_OBJECT_FLOAT32: printf("f32:%.9g", o.via.f64); break;
    case MSGPACK_OBJECT_FLOAT64: printf("f64:%.17g", o.via.f64); break;
    case MSGPACK_OBJECT_STR:
      putchar('"');
      print_bytes(o.via.str.ptr, o.via.str.size);
      putchar('"');
      break;
    case MSGPACK_OBJECT_BIN:
      printf("bin:");
      for (i = 0; i < o.via.bin.size; ++i) printf("%02x", (unsigned char)o.via.bin.ptr[i]);
      break;
    case MSGPACK_OBJECT_ARRAY:
      putchar('[');
      for (i = 0; i < o.via.array.size; ++i) {
        if (i) putchar(',');
        print_object(o.via.array.ptr[i]);
      }
      putchar(']');
      break;
    case MSGPACK_OBJECT_MAP:
      putchar('{');
      for (i = 0; i < o.via.map.size; ++i) {
        if (i) putchar(',');
        print_object(o.via.map.ptr[i].key);
        putchar(':');
        print_object(o.via.map.ptr[i].val);
      }
      putchar('}');
      break;
    default: printf("ext"); break;
  }
}

int main(int argc, char** argv) {
  FILE* f;
  char* data;
  long size;
  size_t off = 0;
  msgpack_unpacked result;
  msgpack_unpack_return ret;
  if (argc != 2) {
    fprintf(stderr, "usage: msgpack_dump FILE\n");
    return 2;
  }
  f = fopen(argv[1], "rb");
  if (!f) {
    perror(argv[1]);
    return 2;
  }
  fseek(f, 0, SEEK_END);
  size = ftell(f);
  fseek(f, 0, SEEK_SET);
  data = malloc(size > 0 ? (size_t)size : 1);
  if (!data || fread(data, 1, (size_t)size, f) != (size_t)size) return 2;
  fclose(f);
  msgpack_unpacked_init(&result);
  while ((ret = msgpack_unpack_next(&result, data, (size_t)size, &off)) == MSGPACK_UNPACK_SUCCESS) {
    print_object(result.data);
    putchar('\n');
  }
  msgpack_unpacked_destroy(&result);
  free(data);
  if (ret != MSGPACK_UNPACK_CONTINUE || off != (size_t)size) {
    fprintf(stderr, "msgpack_dump: malformed data at offset %zu\n", off);
    return 1;
  }
  return 0;
}
