//go:build amd64 && !purego

#include "textflag.h"

// Vectorised float32 exp (the Cephes polynomial of expf in act.go) and the
// LSTM activations built on it, 8 lanes at a time. Constants are replicated
// to 32 bytes so that they can be memory operands.

DATA actc<>+0(SB)/4, $0x42b0c0a5
DATA actc<>+4(SB)/4, $0x42b0c0a5
DATA actc<>+8(SB)/4, $0x42b0c0a5
DATA actc<>+12(SB)/4, $0x42b0c0a5
DATA actc<>+16(SB)/4, $0x42b0c0a5
DATA actc<>+20(SB)/4, $0x42b0c0a5
DATA actc<>+24(SB)/4, $0x42b0c0a5
DATA actc<>+28(SB)/4, $0x42b0c0a5
DATA actc<>+32(SB)/4, $0xc2aeac50
DATA actc<>+36(SB)/4, $0xc2aeac50
DATA actc<>+40(SB)/4, $0xc2aeac50
DATA actc<>+44(SB)/4, $0xc2aeac50
DATA actc<>+48(SB)/4, $0xc2aeac50
DATA actc<>+52(SB)/4, $0xc2aeac50
DATA actc<>+56(SB)/4, $0xc2aeac50
DATA actc<>+60(SB)/4, $0xc2aeac50
DATA actc<>+64(SB)/4, $0x3fb8aa3b
DATA actc<>+68(SB)/4, $0x3fb8aa3b
DATA actc<>+72(SB)/4, $0x3fb8aa3b
DATA actc<>+76(SB)/4, $0x3fb8aa3b
DATA actc<>+80(SB)/4, $0x3fb8aa3b
DATA actc<>+84(SB)/4, $0x3fb8aa3b
DATA actc<>+88(SB)/4, $0x3fb8aa3b
DATA actc<>+92(SB)/4, $0x3fb8aa3b
DATA actc<>+96(SB)/4, $0x3f318000
DATA actc<>+100(SB)/4, $0x3f318000
DATA actc<>+104(SB)/4, $0x3f318000
DATA actc<>+108(SB)/4, $0x3f318000
DATA actc<>+112(SB)/4, $0x3f318000
DATA actc<>+116(SB)/4, $0x3f318000
DATA actc<>+120(SB)/4, $0x3f318000
DATA actc<>+124(SB)/4, $0x3f318000
DATA actc<>+128(SB)/4, $0xb95e8083
DATA actc<>+132(SB)/4, $0xb95e8083
DATA actc<>+136(SB)/4, $0xb95e8083
DATA actc<>+140(SB)/4, $0xb95e8083
DATA actc<>+144(SB)/4, $0xb95e8083
DATA actc<>+148(SB)/4, $0xb95e8083
DATA actc<>+152(SB)/4, $0xb95e8083
DATA actc<>+156(SB)/4, $0xb95e8083
DATA actc<>+160(SB)/4, $0x39506967
DATA actc<>+164(SB)/4, $0x39506967
DATA actc<>+168(SB)/4, $0x39506967
DATA actc<>+172(SB)/4, $0x39506967
DATA actc<>+176(SB)/4, $0x39506967
DATA actc<>+180(SB)/4, $0x39506967
DATA actc<>+184(SB)/4, $0x39506967
DATA actc<>+188(SB)/4, $0x39506967
DATA actc<>+192(SB)/4, $0x3ab743ce
DATA actc<>+196(SB)/4, $0x3ab743ce
DATA actc<>+200(SB)/4, $0x3ab743ce
DATA actc<>+204(SB)/4, $0x3ab743ce
DATA actc<>+208(SB)/4, $0x3ab743ce
DATA actc<>+212(SB)/4, $0x3ab743ce
DATA actc<>+216(SB)/4, $0x3ab743ce
DATA actc<>+220(SB)/4, $0x3ab743ce
DATA actc<>+224(SB)/4, $0x3c088908
DATA actc<>+228(SB)/4, $0x3c088908
DATA actc<>+232(SB)/4, $0x3c088908
DATA actc<>+236(SB)/4, $0x3c088908
DATA actc<>+240(SB)/4, $0x3c088908
DATA actc<>+244(SB)/4, $0x3c088908
DATA actc<>+248(SB)/4, $0x3c088908
DATA actc<>+252(SB)/4, $0x3c088908
DATA actc<>+256(SB)/4, $0x3d2aa9c1
DATA actc<>+260(SB)/4, $0x3d2aa9c1
DATA actc<>+264(SB)/4, $0x3d2aa9c1
DATA actc<>+268(SB)/4, $0x3d2aa9c1
DATA actc<>+272(SB)/4, $0x3d2aa9c1
DATA actc<>+276(SB)/4, $0x3d2aa9c1
DATA actc<>+280(SB)/4, $0x3d2aa9c1
DATA actc<>+284(SB)/4, $0x3d2aa9c1
DATA actc<>+288(SB)/4, $0x3e2aaaaa
DATA actc<>+292(SB)/4, $0x3e2aaaaa
DATA actc<>+296(SB)/4, $0x3e2aaaaa
DATA actc<>+300(SB)/4, $0x3e2aaaaa
DATA actc<>+304(SB)/4, $0x3e2aaaaa
DATA actc<>+308(SB)/4, $0x3e2aaaaa
DATA actc<>+312(SB)/4, $0x3e2aaaaa
DATA actc<>+316(SB)/4, $0x3e2aaaaa
DATA actc<>+320(SB)/4, $0x3f000000
DATA actc<>+324(SB)/4, $0x3f000000
DATA actc<>+328(SB)/4, $0x3f000000
DATA actc<>+332(SB)/4, $0x3f000000
DATA actc<>+336(SB)/4, $0x3f000000
DATA actc<>+340(SB)/4, $0x3f000000
DATA actc<>+344(SB)/4, $0x3f000000
DATA actc<>+348(SB)/4, $0x3f000000
DATA actc<>+352(SB)/4, $0x3f800000
DATA actc<>+356(SB)/4, $0x3f800000
DATA actc<>+360(SB)/4, $0x3f800000
DATA actc<>+364(SB)/4, $0x3f800000
DATA actc<>+368(SB)/4, $0x3f800000
DATA actc<>+372(SB)/4, $0x3f800000
DATA actc<>+376(SB)/4, $0x3f800000
DATA actc<>+380(SB)/4, $0x3f800000
DATA actc<>+384(SB)/4, $0x40000000
DATA actc<>+388(SB)/4, $0x40000000
DATA actc<>+392(SB)/4, $0x40000000
DATA actc<>+396(SB)/4, $0x40000000
DATA actc<>+400(SB)/4, $0x40000000
DATA actc<>+404(SB)/4, $0x40000000
DATA actc<>+408(SB)/4, $0x40000000
DATA actc<>+412(SB)/4, $0x40000000
DATA actc<>+416(SB)/4, $0x0000007f
DATA actc<>+420(SB)/4, $0x0000007f
DATA actc<>+424(SB)/4, $0x0000007f
DATA actc<>+428(SB)/4, $0x0000007f
DATA actc<>+432(SB)/4, $0x0000007f
DATA actc<>+436(SB)/4, $0x0000007f
DATA actc<>+440(SB)/4, $0x0000007f
DATA actc<>+444(SB)/4, $0x0000007f
GLOBL actc<>(SB), RODATA|NOPTR, $448

#define HI actc<>+0(SB)
#define LO actc<>+32(SB)
#define LOG2E actc<>+64(SB)
#define C1 actc<>+96(SB)
#define C2 actc<>+128(SB)
#define P0 actc<>+160(SB)
#define P1 actc<>+192(SB)
#define P2 actc<>+224(SB)
#define P3 actc<>+256(SB)
#define P4 actc<>+288(SB)
#define P5 actc<>+320(SB)
#define ONE actc<>+352(SB)
#define TWO actc<>+384(SB)
#define BIAS actc<>+416(SB)

// EXP computes Y0 = exp(Y0), clobbering Y1, Y2, Y3.
#define EXP \
	VMINPS       HI, Y0, Y0 \
	VMAXPS       LO, Y0, Y0 \
	VMULPS       LOG2E, Y0, Y1 \
	VROUNDPS     $0, Y1, Y1 \
	VFNMADD231PS C1, Y1, Y0 \
	VFNMADD231PS C2, Y1, Y0 \
	VMOVUPS      P0, Y2 \
	VFMADD213PS  P1, Y0, Y2 \
	VFMADD213PS  P2, Y0, Y2 \
	VFMADD213PS  P3, Y0, Y2 \
	VFMADD213PS  P4, Y0, Y2 \
	VFMADD213PS  P5, Y0, Y2 \
	VMULPS       Y0, Y0, Y3 \
	VFMADD213PS  Y0, Y3, Y2 \
	VADDPS       ONE, Y2, Y2 \
	VCVTPS2DQ    Y1, Y1 \
	VPADDD       BIAS, Y1, Y1 \
	VPSLLD       $23, Y1, Y1 \
	VMULPS       Y1, Y2, Y0

// func sigmoidAVX2(dst, src *float32, n int)
// dst[i] = 1/(1+exp(-src[i])) for i < n, n a multiple of 8.
TEXT ·sigmoidAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   sdone
	VXORPS Y7, Y7, Y7

sloop:
	VMOVUPS (SI), Y0
	VSUBPS  Y0, Y7, Y0
	EXP
	VADDPS  ONE, Y0, Y0
	VMOVUPS ONE, Y4
	VDIVPS  Y0, Y4, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     sloop

sdone:
	VZEROUPPER
	RET

// func tanhAVX2(dst, src *float32, n int)
// dst[i] = 1 - 2/(exp(2·src[i])+1) for i < n, n a multiple of 8.
TEXT ·tanhAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   tdone

tloop:
	VMOVUPS (SI), Y0
	VADDPS  Y0, Y0, Y0
	EXP
	VADDPS  ONE, Y0, Y0
	VMOVUPS TWO, Y4
	VDIVPS  Y0, Y4, Y0
	VMOVUPS ONE, Y4
	VSUBPS  Y0, Y4, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     tloop

tdone:
	VZEROUPPER
	RET


// func cellBackwardAVX2(gates, dgates, tc, dho, dh, dc, cp unsafe.Pointer, h int)
// One row of the LSTM cell's backward pass (see cellBackward in lstm.go):
// g and dG hold the four gate blocks i, f, g, o of h values each; cp may be
// nil (zero initial cell state). h is a multiple of 8.
TEXT ·cellBackwardAVX2(SB), NOSPLIT, $0-64
	MOVQ gates+0(FP), SI
	MOVQ dgates+8(FP), DI
	MOVQ tc+16(FP), R8
	MOVQ dho+24(FP), R9
	MOVQ dh+32(FP), R10
	MOVQ dc+40(FP), R11
	MOVQ cp+48(FP), R12
	MOVQ h+56(FP), CX
	MOVQ CX, BX
	SHLQ $2, BX        // H in bytes: distance between gate blocks
	SHRQ $3, CX
	JZ   bdone
	VMOVUPS ONE, Y15
	VXORPS  Y14, Y14, Y14

bloop:
	VMOVUPS (R9), Y0          // dho
	VADDPS  (R10), Y0, Y0     // dhv = dho + dh
	VMOVUPS (R8), Y1          // tc
	LEAQ    (SI)(BX*2), DX
	VMOVUPS (DX)(BX*1), Y2    // o
	VMULPS  Y1, Y1, Y3        // tc²
	VSUBPS  Y3, Y15, Y3       // 1 - tc²
	VMULPS  Y2, Y0, Y4        // dhv*o
	VMULPS  Y3, Y4, Y4        // dhv*o*(1-tc²)
	VADDPS  (R11), Y4, Y4     // dcv = dc + ...
	// do = dhv*tc*o*(1-o)
	VSUBPS  Y2, Y15, Y5       // 1-o
	VMULPS  Y2, Y5, Y5        // o(1-o)
	VMULPS  Y1, Y0, Y6        // dhv*tc
	VMULPS  Y5, Y6, Y6
	LEAQ    (DI)(BX*2), DX
	VMOVUPS Y6, (DX)(BX*1)
	// di = dcv*g*i*(1-i); dg = dcv*i*(1-g²)
	VMOVUPS (SI), Y7          // i
	VMOVUPS (SI)(BX*2), Y8    // g
	VSUBPS  Y7, Y15, Y9       // 1-i
	VMULPS  Y7, Y9, Y9        // i(1-i)
	VMULPS  Y8, Y9, Y9        // g*i(1-i)
	VMULPS  Y4, Y9, Y9
	VMOVUPS Y9, (DI)
	VMULPS  Y8, Y8, Y10       // g²
	VSUBPS  Y10, Y15, Y10     // 1-g²
	VMULPS  Y7, Y10, Y10      // i(1-g²)
	VMULPS  Y4, Y10, Y10
	VMOVUPS Y10, (DI)(BX*2)
	// df = dcv*cp*f*(1-f); dc = dcv*f
	VMOVUPS (SI)(BX*1), Y11   // f
	VMOVAPS Y14, Y12          // cp (0 without a previous state)
	TESTQ   R12, R12
	JZ      bnocp
	VMOVUPS (R12), Y12
	ADDQ    $32, R12

bnocp:
	VSUBPS  Y11, Y15, Y13     // 1-f
	VMULPS  Y11, Y13, Y13     // f(1-f)
	VMULPS  Y12, Y13, Y13     // cp*f(1-f)
	VMULPS  Y4, Y13, Y13
	VMOVUPS Y13, (DI)(BX*1)
	VMULPS  Y11, Y4, Y4       // dcv*f
	VMOVUPS Y4, (R11)
	ADDQ    $32, SI
	ADDQ    $32, DI
	ADDQ    $32, R8
	ADDQ    $32, R9
	ADDQ    $32, R10
	ADDQ    $32, R11
	DECQ    CX
	JNZ     bloop

bdone:
	VZEROUPPER
	RET

// func cellInferAVX512(gates, cp, c, h unsafe.Pointer, hn int)
// One row of the LSTM cell in inference, 16 units at a time: the gate
// pre-activations i, f, g, o (blocks of hn values) give c = σ(i)·tanh(g) +
// σ(f)·cp (cp nil: a zero state) and h = σ(o)·tanh(c). The operations are
// those of sigmoidAVX2, tanhAVX2 and cellForward32, lane for lane, so the
// bits are the same; the activated gates are not stored. hn is a multiple
// of 16.
TEXT ·cellInferAVX512(SB), NOSPLIT, $0-40
	MOVQ gates+0(FP), SI
	MOVQ cp+8(FP), R12
	MOVQ c+16(FP), R8
	MOVQ h+24(FP), R9
	MOVQ hn+32(FP), CX
	MOVQ CX, BX
	SHLQ $2, BX        // hn in bytes: distance between gate blocks
	LEAQ (BX)(BX*2), DX // 3·hn bytes
	SHRQ $4, CX
	JZ   cidone
	VBROADCASTSS actc<>+0(SB), Z18
	VBROADCASTSS actc<>+32(SB), Z19
	VBROADCASTSS actc<>+64(SB), Z20
	VBROADCASTSS actc<>+96(SB), Z21
	VBROADCASTSS actc<>+128(SB), Z22
	VBROADCASTSS actc<>+160(SB), Z23
	VBROADCASTSS actc<>+192(SB), Z24
	VBROADCASTSS actc<>+224(SB), Z25
	VBROADCASTSS actc<>+256(SB), Z26
	VBROADCASTSS actc<>+288(SB), Z27
	VBROADCASTSS actc<>+320(SB), Z28
	VBROADCASTSS actc<>+352(SB), Z29
	VBROADCASTSS actc<>+384(SB), Z30
	VBROADCASTSS actc<>+416(SB), Z31
	VXORPS Z17, Z17, Z17

cloop:
	VMOVUPS (SI), Z0           // i
	VSUBPS       Z0, Z17, Z0
	VMINPS       Z18, Z0, Z0
	VMAXPS       Z19, Z0, Z0
	VMULPS       Z20, Z0, Z8
	VRNDSCALEPS  $0, Z8, Z8
	VFNMADD231PS Z21, Z8, Z0
	VFNMADD231PS Z22, Z8, Z0
	VMOVAPS      Z23, Z9
	VFMADD213PS  Z24, Z0, Z9
	VFMADD213PS  Z25, Z0, Z9
	VFMADD213PS  Z26, Z0, Z9
	VFMADD213PS  Z27, Z0, Z9
	VFMADD213PS  Z28, Z0, Z9
	VMULPS       Z0, Z0, Z10
	VFMADD213PS  Z0, Z10, Z9
	VADDPS       Z29, Z9, Z9
	VCVTPS2DQ    Z8, Z8
	VPADDD       Z31, Z8, Z8
	VPSLLD       $23, Z8, Z8
	VMULPS       Z8, Z9, Z0
	VADDPS       Z29, Z0, Z0
	VDIVPS       Z0, Z29, Z0
	VMOVUPS (SI)(BX*2), Z1     // g
	VADDPS       Z1, Z1, Z1
	VMINPS       Z18, Z1, Z1
	VMAXPS       Z19, Z1, Z1
	VMULPS       Z20, Z1, Z11
	VRNDSCALEPS  $0, Z11, Z11
	VFNMADD231PS Z21, Z11, Z1
	VFNMADD231PS Z22, Z11, Z1
	VMOVAPS      Z23, Z12
	VFMADD213PS  Z24, Z1, Z12
	VFMADD213PS  Z25, Z1, Z12
	VFMADD213PS  Z26, Z1, Z12
	VFMADD213PS  Z27, Z1, Z12
	VFMADD213PS  Z28, Z1, Z12
	VMULPS       Z1, Z1, Z13
	VFMADD213PS  Z1, Z13, Z12
	VADDPS       Z29, Z12, Z12
	VCVTPS2DQ    Z11, Z11
	VPADDD       Z31, Z11, Z11
	VPSLLD       $23, Z11, Z11
	VMULPS       Z11, Z12, Z1
	VADDPS       Z29, Z1, Z1
	VDIVPS       Z1, Z30, Z1
	VSUBPS       Z1, Z29, Z1
	VMULPS  Z1, Z0, Z0         // i·g
	TESTQ   R12, R12
	JZ      cnocp
	VMOVUPS (SI)(BX*1), Z2     // f
	VSUBPS       Z2, Z17, Z2
	VMINPS       Z18, Z2, Z2
	VMAXPS       Z19, Z2, Z2
	VMULPS       Z20, Z2, Z8
	VRNDSCALEPS  $0, Z8, Z8
	VFNMADD231PS Z21, Z8, Z2
	VFNMADD231PS Z22, Z8, Z2
	VMOVAPS      Z23, Z9
	VFMADD213PS  Z24, Z2, Z9
	VFMADD213PS  Z25, Z2, Z9
	VFMADD213PS  Z26, Z2, Z9
	VFMADD213PS  Z27, Z2, Z9
	VFMADD213PS  Z28, Z2, Z9
	VMULPS       Z2, Z2, Z10
	VFMADD213PS  Z2, Z10, Z9
	VADDPS       Z29, Z9, Z9
	VCVTPS2DQ    Z8, Z8
	VPADDD       Z31, Z8, Z8
	VPSLLD       $23, Z8, Z8
	VMULPS       Z8, Z9, Z2
	VADDPS       Z29, Z2, Z2
	VDIVPS       Z2, Z29, Z2
	VMULPS  (R12), Z2, Z2      // f·cp
	VADDPS  Z2, Z0, Z0
	ADDQ    $64, R12

cnocp:
	VMOVUPS Z0, (R8)           // c
	VMOVUPS (SI)(DX*1), Z3     // o
	VSUBPS       Z3, Z17, Z3
	VMINPS       Z18, Z3, Z3
	VMAXPS       Z19, Z3, Z3
	VMULPS       Z20, Z3, Z11
	VRNDSCALEPS  $0, Z11, Z11
	VFNMADD231PS Z21, Z11, Z3
	VFNMADD231PS Z22, Z11, Z3
	VMOVAPS      Z23, Z12
	VFMADD213PS  Z24, Z3, Z12
	VFMADD213PS  Z25, Z3, Z12
	VFMADD213PS  Z26, Z3, Z12
	VFMADD213PS  Z27, Z3, Z12
	VFMADD213PS  Z28, Z3, Z12
	VMULPS       Z3, Z3, Z13
	VFMADD213PS  Z3, Z13, Z12
	VADDPS       Z29, Z12, Z12
	VCVTPS2DQ    Z11, Z11
	VPADDD       Z31, Z11, Z11
	VPSLLD       $23, Z11, Z11
	VMULPS       Z11, Z12, Z3
	VADDPS       Z29, Z3, Z3
	VDIVPS       Z3, Z29, Z3
	VADDPS       Z0, Z0, Z0
	VMINPS       Z18, Z0, Z0
	VMAXPS       Z19, Z0, Z0
	VMULPS       Z20, Z0, Z8
	VRNDSCALEPS  $0, Z8, Z8
	VFNMADD231PS Z21, Z8, Z0
	VFNMADD231PS Z22, Z8, Z0
	VMOVAPS      Z23, Z9
	VFMADD213PS  Z24, Z0, Z9
	VFMADD213PS  Z25, Z0, Z9
	VFMADD213PS  Z26, Z0, Z9
	VFMADD213PS  Z27, Z0, Z9
	VFMADD213PS  Z28, Z0, Z9
	VMULPS       Z0, Z0, Z10
	VFMADD213PS  Z0, Z10, Z9
	VADDPS       Z29, Z9, Z9
	VCVTPS2DQ    Z8, Z8
	VPADDD       Z31, Z8, Z8
	VPSLLD       $23, Z8, Z8
	VMULPS       Z8, Z9, Z0
	VADDPS       Z29, Z0, Z0
	VDIVPS       Z0, Z30, Z0
	VSUBPS       Z0, Z29, Z0
	VMULPS  Z0, Z3, Z3         // o·tanh(c)
	VMOVUPS Z3, (R9)
	ADDQ    $64, SI
	ADDQ    $64, R8
	ADDQ    $64, R9
	DECQ    CX
	JNZ     cloop

cidone:
	VZEROUPPER
	RET
