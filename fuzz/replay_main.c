/*
 * replay_main.c - runs a fuzz target over every file of its corpus directory so
 * that `make test` replays the corpus deterministically without libFuzzer. With
 * SC_FUZZ=ON and clang, targets link against libFuzzer instead of this file.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	uint8_t *data;
	size_t n;

	if (!f || fstat(fileno(f), &st) != 0) {
		fprintf(stderr, "replay: cannot open %s\n", path);
		if (f)
			fclose(f);
		return -1;
	}
	/* exactly the input's size: ASan then sees a target read past its end */
	data = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	if (!data) {
		fclose(f);
		return -1;
	}
	n = fread(data, 1, (size_t)st.st_size, f);
	fclose(f);
	LLVMFuzzerTestOneInput(data, n);
	free(data);
	return 0;
}

int main(int argc, char **argv)
{
	int files = 0;

	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		struct dirent *de;

		if (!d) {
			if (replay_file(argv[i]) != 0)
				return 1;
			files++;
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			char path[4096];

			if (de->d_name[0] == '.')
				continue;
			if ((size_t)snprintf(path, sizeof path, "%s/%s", argv[i], de->d_name) >= sizeof path)
				continue;
			if (replay_file(path) != 0) {
				closedir(d);
				return 1;
			}
			files++;
		}
		closedir(d);
	}
	LLVMFuzzerTestOneInput((const uint8_t *)"", 0);
	printf("replayed %d corpus files\n", files);
	return files > 0 ? 0 : 1;
}
