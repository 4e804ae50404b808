#include <gtest/gtest.h>  // placeholder: tests are being written
