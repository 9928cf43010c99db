#include "kp_common.h"
